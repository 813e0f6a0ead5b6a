"""The Zalo Official Account channel (Open API v3): signed webhooks in, OA messages out.

An OA cannot be polled: Zalo POSTs events to `ykien serve` (bot.web.webhook), which asks
`verify`, reads the event once (`read_webhook_update`), stores it and hands it to
`process_webhook_update`. Replies and broadcasts go out as customer-service messages
(`/v3.0/oa/message/cs`), which reach only residents who wrote in the last 7 days: the
delivery worker holds the others (`messaging_window`) until they write again, or, with
YKIEN_ZALO_PROMOTION=1, this channel sends them the promotion type instead (once a day per
resident, never at night). Logs name chats by `chat_ref` only.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import aiohttp
from aiohttp import web

from bot.channels.channel import (
    ChannelDisabled,
    OutsideWindow,
    PermanentFailure,
    ReadUpdate,
    SendError,
    TemporaryFailure,
    Verdict,
)
from bot.channels.chatorder import ChatLanes
from bot.channels.pacing import ChannelLimiter, Priority
from bot.channels.zalo_oa.api import (
    BUTTONS_LIMIT,
    CHANNEL,
    CS_PATH,
    PROMOTION_PATH,
    TEXT_LIMIT,
    TITLE_LIMIT,
    UPLOAD_IMAGE_PATH,
    TokenRejected,
    choice_of,
    cs_body,
    image_body,
    next_morning,
    post_message,
    promotion_body,
    upload_image,
)
from bot.channels.zalo_oa.oauth import CALLBACK_PATH, ZaloApp, callback_handler
from bot.channels.zalo_oa.tokens import TokenKeeper
from handlers.capabilities import Capabilities, PictureWay
from handlers.events import (
    Button,
    Document,
    Incoming,
    Kind,
    LinkedPicture,
    Outgoing,
    Picture,
    Reply,
)
from handlers.logref import chat_ref
from storage import outbox
from storage.models import VIETNAM, utcnow

if TYPE_CHECKING:
    from bot.config import Settings
    from bot.service import ChatService

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-ZEvent-Signature"
WEBHOOK_PATH = "/zalo/webhook"
REPLAY_WINDOW = timedelta(minutes=5)  # a signed event older (or newer) than this is refused
WINDOW = timedelta(days=7)  # customer-service messages reach who wrote within this
MESSAGES_PER_SECOND = 10.0  # a cautious pace for the whole OA (Zalo publishes no figure)
CONTINUED = "⋯"  # the text of a message carrying only further buttons (Zalo needs text)
QUIET_FROM, QUIET_UNTIL = 22, 6  # no promotion messages in these hours (Vietnam time)

# Resident events -> neutral kinds; everything else (the OA's own echoes, shop and call
# events) is acknowledged and ignored.
MESSAGE_KINDS = {
    "user_send_text": Kind.TEXT,
    "user_click_button": Kind.TEXT,  # its payload is read like a pressed button's text
    "user_send_image": Kind.PHOTO,
    "user_send_sticker": Kind.STICKER,
    "user_send_audio": Kind.VOICE,
    "user_send_location": Kind.LOCATION,
    "user_send_file": Kind.FILE,
    # A text with a link in it arrives as this, with the whole text: a resident's text.
    "user_send_link": Kind.TEXT,
    "user_send_gif": Kind.OTHER,
    "user_send_video": Kind.OTHER,
    "user_send_business_card": Kind.OTHER,
}
# What to tick on the app's Webhook page (bot logs it, the README says it): every event above.
EVENTS_TO_TICK = ("user_send_text", "user_send_link", "user_click_button", "follow",
                  "unfollow", "user_send_image", "user_send_sticker", "user_send_audio",
                  "user_send_location", "user_send_file")
FOLLOW_KINDS = {"follow": Kind.FOLLOW, "unfollow": Kind.BLOCKED}


def signature(app_id: str, body: bytes, timestamp: str, oa_secret: str) -> str:
    """Zalo's webhook MAC: plain SHA-256 (not HMAC) of app id, body, timestamp, OA secret."""
    return hashlib.sha256(
        app_id.encode() + body + timestamp.encode() + oa_secret.encode()
    ).hexdigest()


def to_incoming(payload: object) -> Incoming | None:
    """The neutral event of a Zalo webhook payload; None for what is not a resident's doing.

    Raises ValueError for a resident event without the ids it must carry.
    """
    if not isinstance(payload, dict):
        raise ValueError("not a Zalo event")
    name = str(payload.get("event_name", ""))
    if name in FOLLOW_KINDS:
        follower = _id(payload.get("follower"))
        timestamp = str(payload.get("timestamp", ""))
        if not follower or not timestamp:
            raise ValueError("follow event without follower or timestamp")
        # The id outlives the chat's data (it recognises a retry for two days): no chat id in it.
        event = hashlib.sha256(f"{follower}:{timestamp}".encode()).hexdigest()[:40]
        return Incoming(CHANNEL, follower, FOLLOW_KINDS[name], update_id=f"{name}:{event}")
    kind = MESSAGE_KINDS.get(name)
    if kind is None:
        return None
    sender = _id(payload.get("sender"))
    message = payload.get("message")
    if not sender or not isinstance(message, dict) or not message.get("msg_id"):
        raise ValueError("message event without sender or msg_id")
    update_id = str(message["msg_id"])[:64]
    reply_to = str(message.get("quote_msg_id") or "")
    if kind != Kind.TEXT:
        return Incoming(CHANNEL, sender, kind, update_id=update_id, reply_to=reply_to)
    text = str(message.get("text") or message.get("payload") or _link(message) or "")
    choice = choice_of(text)
    if choice is not None:
        return Incoming(CHANNEL, sender, Kind.CHOICE, choice=choice, update_id=update_id)
    return Incoming(CHANNEL, sender, Kind.TEXT, text=text, update_id=update_id,
                    reply_to=reply_to)


def _id(part: object) -> str:
    return str(part.get("id") or "") if isinstance(part, dict) else ""


def _link(message: dict) -> str:
    """The address a `user_send_link` carries, should its text be missing."""
    attachments = message.get("attachments")
    for attachment in attachments if isinstance(attachments, list) else []:
        payload = attachment.get("payload") if isinstance(attachment, dict) else None
        if isinstance(payload, dict) and isinstance(payload.get("url"), str):
            return payload["url"]
    return ""


def split_text(text: str, limit: int = TEXT_LIMIT) -> list[str]:
    """Parts within `limit`, cut at paragraph, then line, then word ends (mid-word last)."""
    parts: list[str] = []
    rest = text
    while len(rest) > limit:
        window = rest[: limit + 1]
        cut = next((window.rfind(sep) for sep in ("\n\n", "\n", " ") if window.rfind(sep) > 0),
                   limit)
        parts.append(rest[:cut].rstrip())
        rest = rest[cut:].lstrip()
    parts.append(rest)
    return [part for part in parts if part.strip()] or [text]


def render(message: Outgoing) -> list[tuple[str, list[Button]]]:
    """The OA messages for one outgoing message: (text, at most five buttons) each.

    Texts over the limit are split; buttons go with the last part, five per message (the
    layout numbers excess choices before this; this only guards the platform's limits).
    A picture's image is the channel's to upload (`ZaloOAChannel.send`): here, its caption.
    """
    if isinstance(message, Document | Picture | LinkedPicture):
        if not message.caption:
            raise PermanentFailure("files are not sent on Zalo OA")
        return [(part, []) for part in split_text(message.caption)]
    buttons = [button for row in message.buttons for button in row]
    parts: list[tuple[str, list[Button]]] = [(part, []) for part in split_text(message.text)]
    groups = [buttons[i:i + BUTTONS_LIMIT] for i in range(0, len(buttons), BUTTONS_LIMIT)]
    if groups:
        parts[-1] = (parts[-1][0], groups[0])
        parts += [(CONTINUED, group) for group in groups[1:]]
    return parts


class ZaloOAChannel:
    """A Zalo Official Account: webhook events in, customer-service messages out."""

    name = CHANNEL
    webhook_path = WEBHOOK_PATH

    def __init__(
        self,
        service: ChatService,
        *,
        app_id: str,
        app_secret: str,
        oa_secret: str,
        api_url: str,
        oauth_url: str,
        keeper: TokenKeeper | None = None,
        seed_access: str = "",
        seed_refresh: str = "",
        public_url: str = "",
        promotion: bool = False,
        limiter: ChannelLimiter | None = None,
        now: Callable[[], datetime] = utcnow,
    ) -> None:
        self.service = service
        self.app_id = app_id
        self.oa_secret = oa_secret
        self.api_url = api_url.rstrip("/")
        self.oauth_url = oauth_url.rstrip("/")
        self.public_url = public_url.rstrip("/")
        self.promotion = promotion
        self.now = now
        # With promotion messages nobody is out of reach: the worker need not hold anyone.
        self.capabilities = Capabilities(
            buttons_per_message=BUTTONS_LIMIT, button_label_limit=TITLE_LIMIT,
            text_limit=TEXT_LIMIT, can_edit=False,
            messaging_window=None if promotion else WINDOW,
            # Images are uploaded, then sent by their attachment id; documents are not sent
            # (the upload takes only PDF and Word files).
            pictures=PictureWay.FILE,
        )
        self.limiter = limiter or ChannelLimiter(MESSAGES_PER_SECOND)
        self.keeper = keeper or TokenKeeper(
            service.sessionmaker, self._http, self.oauth_url, app_id, app_secret,
            seed_access=seed_access, seed_refresh=seed_refresh, now=now,
        )
        self.lanes = ChatLanes()
        self._session: aiohttp.ClientSession | None = None

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession()
        return self._session

    # ---- Channel ---------------------------------------------------------------------------

    async def start(self) -> None:
        """An OA has no polling: this only gets ready to send (updates come to `ykien serve`)."""
        await self.start_webhook()

    async def start_webhook(self) -> None:
        await self.keeper.load()
        log.info("Zalo OA: ready (events arrive by webhook at %s)", self.webhook_path)

    async def stop(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def send(self, user_id: str, message: Outgoing) -> str:
        """Send one message (laid out within the OA's limits); the id of its last part."""
        message_id = ""
        for laid_out in await self.service.lay_out(self.name, self.capabilities, user_id,
                                                   message):
            if isinstance(laid_out, Picture):
                message_id = await self._send_picture(user_id, laid_out)
                continue
            for text, buttons in render(laid_out):
                try:
                    message_id = await self._post(CS_PATH, cs_body(user_id, text, buttons))
                except OutsideWindow:
                    if not self.promotion or not isinstance(laid_out, Reply):
                        raise
                    return await self._promote(user_id, laid_out)
        return message_id

    async def _send_picture(self, user_id: str, picture: Picture) -> str:
        """Upload the image, then send it (with the caption's first part beside it, the rest
        after it); the id of the last message."""
        url = self.api_url + UPLOAD_IMAGE_PATH
        attachment = await self._authorised(
            lambda token: upload_image(self._http(), url, token, picture.data, self.now()))
        caption, *rest = split_text(picture.caption) if picture.caption.strip() else [""]
        message_id = await self._post(CS_PATH, image_body(user_id, attachment, caption))
        for text in rest:
            message_id = await self._post(CS_PATH, cs_body(user_id, text, []))
        return message_id

    async def _post(self, path: str, body: dict[str, Any]) -> str:
        """POST a message with the current token (see `_authorised`); its id."""
        url = self.api_url + path
        return await self._authorised(
            lambda token: post_message(self._http(), url, token, body, self.now()))

    async def _authorised(self, call: Callable[[str], Awaitable[str]]) -> str:
        """`call` with the current access token; after -216/-220 refresh it and call once
        more. A refusal of the app or the OA disables the channel until an admin acts."""
        token = await self.keeper.access_token()
        try:
            try:
                return await call(token)
            except TokenRejected:
                token = await self.keeper.refresh(token)
            try:
                return await call(token)
            except TokenRejected as again:
                raise TemporaryFailure(f"a fresh access token was refused: {again}") from again
        except ChannelDisabled as disabled:
            if not self.keeper.problem:  # Zalo says the app or the OA is set up wrongly
                await self.keeper.disable(f"Zalo refused the app or the OA ({disabled})")
            raise

    async def _promote(self, user_id: str, message: Reply) -> str:
        """The promotion type for a resident outside the window: once a day, never at night."""
        now = self.now()
        hour = now.astimezone(VIETNAM).hour
        if hour >= QUIET_FROM or hour < QUIET_UNTIL:
            raise TemporaryFailure("no promotion messages at night", retry_at=next_morning(now))
        async with self.service.sessionmaker() as session, session.begin():
            next_allowed = await outbox.reserve_promotion(session, CHANNEL, user_id, now)
        if next_allowed is not None:
            raise TemporaryFailure("one promotion message a day", retry_at=next_allowed)
        header, _, text = message.text.partition("\n")
        buttons = [button for row in message.buttons for button in row]
        return await self._post(
            PROMOTION_PATH, promotion_body(user_id, header, text.strip() or header, buttons)
        )

    # ---- WebhookChannel --------------------------------------------------------------------

    def verify(self, headers: Mapping[str, str], body: bytes) -> Verdict:
        """Zalo's signature over the body, for our app, made within the last 5 minutes.

        The signature covers the app id and timestamp written in the body, so the body is
        read first (the server has bounded how deeply it nests)."""
        try:
            payload = json.loads(body)
        except ValueError:
            return 400
        if not isinstance(payload, dict):
            return 400
        app_id, timestamp = str(payload.get("app_id", "")), str(payload.get("timestamp", ""))
        given = headers.get(SIGNATURE_HEADER, "").strip()
        mac = given[4:] if given.lower().startswith("mac=") else ""
        expected = signature(app_id, body, timestamp, self.oa_secret)
        if not self.oa_secret or not hmac.compare_digest(mac.lower().encode(), expected.encode()):
            return 403
        if not hmac.compare_digest(app_id.encode(), self.app_id.encode()):
            return 403
        if not (timestamp.isascii() and timestamp.isdigit()):
            return 403
        try:
            sent_at = datetime.fromtimestamp(int(timestamp) / 1000, tz=UTC)
        except (OverflowError, OSError, ValueError):  # no time a clock can hold
            return 403
        if abs(self.now() - sent_at) > REPLAY_WINDOW:
            return 403
        return None

    def read_webhook_update(self, payload: object) -> ReadUpdate | None:
        """A signed event read, under its message id and resident; None for one that is not
        a resident's doing (the OA's own echoes): acknowledged, nothing stored; ValueError if
        malformed."""
        event = to_incoming(payload)
        if event is None:
            return None
        return ReadUpdate(event.update_id, event.user_id, event)

    async def process_webhook_update(
        self, update: object, handle: Callable[[Callable[[], Awaitable[None]]], Awaitable[None]]
    ) -> None:
        event = update
        if not isinstance(event, Incoming):
            raise ValueError("not a Zalo OA event")
        await self.lanes.run(event.user_id, lambda: handle(lambda: self._answer(event)))

    async def _answer(self, event: Incoming) -> None:
        # With the capabilities: a typed number picks a numbered choice, and /results
        # knows a picture can be sent here.
        for reply in await self.service.handle(event, self.capabilities):
            await self.limiter.acquire(event.user_id, Priority.REPLY)
            try:
                message_id = await self.send(event.user_id, reply)
            except SendError as error:
                # The event stays handled; the resident can write again.
                log.warning("Zalo OA: a reply to %s was not sent: %s",
                            chat_ref(CHANNEL, event.user_id), type(error).__name__)
                return
            await self.service.sent(CHANNEL, event.user_id, message_id, reply)

    async def register_webhook(self, url: str) -> None:
        """Only a person can set an OA's webhook: say where, in the Zalo developer console."""
        log.info("Zalo OA: in the Zalo developer console (Webhook), set the URL to %s and tick "
                 "%s", url, ", ".join(EVENTS_TO_TICK))

    def extra_routes(self) -> list[web.RouteDef]:
        """The OAuth callback of `ykien zalo auth` (the redirect URI registered with Zalo)."""
        app = ZaloApp(self.oauth_url, self.app_id, self.keeper.app_secret)
        return [web.get(CALLBACK_PATH, callback_handler(self.service.sessionmaker, self._http,
                                                        app))]


def from_settings(settings: Settings, service: ChatService) -> ZaloOAChannel:
    """The OA channel as configured (bot.channels.registry)."""
    from storage.budget import DatabaseBudget

    return ZaloOAChannel(
        service,
        app_id=settings.zalo_app_id, app_secret=settings.zalo_app_secret,
        oa_secret=settings.zalo_oa_secret, api_url=settings.zalo_api_url,
        oauth_url=settings.zalo_oauth_url, seed_access=settings.zalo_access_token,
        seed_refresh=settings.zalo_refresh_token, public_url=settings.public_url,
        promotion=settings.zalo_promotion,
        # The pace holds for the OA however many processes send.
        limiter=ChannelLimiter(MESSAGES_PER_SECOND,
                               budget=DatabaseBudget(service.sessionmaker, CHANNEL)),
    )
