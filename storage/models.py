"""Database tables. Times are stored in UTC; residents are known by channel + platform id."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from storage import VIETNAM as VIETNAM  # importable from here too, beside the models
from storage import sealing

# Named constraints keep Alembic migrations identical on SQLite and PostgreSQL.
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


# Times are shown and read in Vietnam time (storage.VIETNAM); they are stored in UTC.


def utcnow() -> datetime:
    return datetime.now(UTC)


class UtcDateTime(TypeDecorator[datetime]):
    """Aware datetimes in, aware UTC datetimes out, also on SQLite (which keeps no zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime: give a timezone")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class SealedText(TypeDecorator[str]):
    """A text column whose values are sealed with the process's keys when written and opened
    when read (storage.sealing; values written before any key are read as they are)."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: str | None, dialect) -> str | None:
        return None if value is None else sealing.current().seal(value)

    def process_result_value(self, value: str | None, dialect) -> str | None:
        return None if value is None else sealing.current().open(value, "a Zalo OA token")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class DraftStatus(StrEnum):
    DRAFT = "draft"  # created, not yet broadcast
    OPEN = "open"  # broadcast; comments accepted until the deadline
    CLOSED = "closed"


class DeliveryStatus(StrEnum):
    PENDING = "pending"
    SENDING = "sending"  # claimed by a worker until not_before; then claimable again
    SENT = "sent"
    FAILED = "failed"  # gave up for a permanent reason
    UNREACHABLE = "unreachable"  # the resident blocked the bot
    SKIPPED = "skipped"  # the resident stopped or left before their turn came
    EXPIRED = "expired"  # not sent: the draft's deadline passed (or it was closed) first
    CANCELLED = "cancelled"  # not sent: an official cancelled the broadcast
    # Waiting for the resident to open the channel's messaging window (Zalo OA: they must
    # have written in the last 7 days); sent when they next write, unless it expired first.
    HELD = "held"


class RespondentCategory(StrEnum):
    """Whom a resident answers for, as consultation plans count it: said once, changeable."""

    INDIVIDUAL = "individual"
    ORGANISATION = "organisation"
    BUSINESS = "business"
    # "" (not a member): not said


class CommentSource(StrEnum):
    """How a comment or vote reached us: the chat, or gathered offline and entered by staff."""

    CHAT = "chat"
    MEETING = "meeting"  # a village meeting
    PHONE = "phone"
    PAPER = "paper"
    OTHER = "other"


OFFLINE_SOURCES = (CommentSource.MEETING, CommentSource.PHONE, CommentSource.PAPER,
                   CommentSource.OTHER)


class IssuerLevel(StrEnum):
    """The level of the body that issues a draft, as the Decision 407 report counts drafts."""

    NATIONAL = "national"
    PROVINCIAL = "provincial"
    COMMUNE = "commune"
    # "" (not a member): not stated (drafts made before the field existed)


class Person(Base):
    """One human being, who may reach us through several chat identities (`Resident` rows).

    Identities linked by a code (see handlers.linking) share one person: one subscription,
    one vote per poll, one delivery per draft, one pseudonym in exports.
    """

    __tablename__ = "persons"
    # Never reuse the number of an erased person (SQLite would, for the highest): the audit
    # log's and the exports' pseudonyms are keyed by it, and must not pass to someone new.
    __table_args__ = ({"sqlite_autoincrement": True},)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    # Past the comment limits (storage.flood) until then, and told so once: later comments
    # before then are dropped without another answer.
    comments_refused_until: Mapped[datetime | None] = mapped_column(UtcDateTime)
    # Whom they answer for (a RespondentCategory, "" not said), and when they were asked:
    # asked once, after their first comment; they may change it later.
    respondent_category: Mapped[str] = mapped_column(String(16), default="")
    category_asked_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class Resident(Base):
    """A person's identity in one chat. Exists only once they consented to the privacy notice."""

    __tablename__ = "residents"
    # As for persons: an erased chat's number is never given to a new one.
    __table_args__ = (UniqueConstraint("channel", "platform_id"), {"sqlite_autoincrement": True})

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    channel: Mapped[str] = mapped_column(String(16))
    platform_id: Mapped[str] = mapped_column(String(64))
    person_id: Mapped[int] = mapped_column(
        ForeignKey("persons.id", ondelete="CASCADE"), index=True
    )
    language: Mapped[str] = mapped_column(String(8), default="vi")
    commune_code: Mapped[int | None] = mapped_column(Integer, index=True)
    consent_at: Mapped[datetime] = mapped_column(UtcDateTime)
    consent_version: Mapped[str] = mapped_column(String(16))
    subscribed: Mapped[bool] = mapped_column(Boolean, default=True)
    reachable: Mapped[bool] = mapped_column(Boolean, default=True)
    # When the resident last wrote or pressed a button (Zalo's messaging window needs it too).
    last_seen_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    # The privacy notice version the resident was last shown (they may have agreed to older).
    notice_version: Mapped[str] = mapped_column(String(16), default="")
    # What the next typed text means (see handlers.state); empty when nothing is awaited.
    awaiting: Mapped[str] = mapped_column(String(32), default="")
    # When the wait began: an abandoned step expires instead of swallowing later messages.
    awaiting_since: Mapped[datetime | None] = mapped_column(UtcDateTime)
    # Text sent outside any draft, kept until the resident says which draft it is for, and
    # whether it was forwarded (someone else's words, marked so in the comment).
    held_text: Mapped[str] = mapped_column(Text, default="")
    held_forwarded: Mapped[bool] = mapped_column(Boolean, default=False)
    # The last promotion-type message sent (Zalo OA allows one per resident per day).
    last_promotion_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)

    # Loaded only with the chat a turn reads (queries.get_resident), in the same query: a
    # comment or vote records whom the person answers for without another one. Written
    # through person_id alone.
    person: Mapped[Person] = relationship(lazy="raise", viewonly=True)


class LinkCode(Base):
    """A short-lived code shown in one chat and typed in another to join the two identities."""

    __tablename__ = "link_codes"

    code: Mapped[str] = mapped_column(String(16), primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("persons.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime)


class LinkGuess(Base):
    """A wrong link code typed in one of a person's chats: a few an hour are allowed."""

    __tablename__ = "link_guesses"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("persons.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class ChatChoices(Base):
    """The numbers last shown in a chat next to choices, so a typed "2" works on any process.

    Kept per chat (not per resident): choices are shown before consent too (language,
    Agree). `choices` is JSON written by handlers.numbering; rows are purged when stale.
    """

    __tablename__ = "chat_choices"

    channel: Mapped[str] = mapped_column(String(16), primary_key=True)
    platform_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    choices: Mapped[str] = mapped_column(Text, default="")
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow, index=True)


class ChannelToken(Base):
    """A channel's OAuth tokens (Zalo OA), kept in the database once refreshed.

    Zalo's refresh tokens are single-use: the new pair is saved before the new access token
    is used. `problem` holds why the channel stopped sending (shown by `ykien zalo status`);
    `pkce_verifier`/`pkce_state` belong to an authorisation under way (`ykien zalo auth`).
    """

    __tablename__ = "channel_tokens"

    channel: Mapped[str] = mapped_column(String(32), primary_key=True)
    # Sealed with YKIEN_SECRET_KEY (storage.sealing): the database alone holds no usable token.
    access_token: Mapped[str] = mapped_column(SealedText, default="")
    refresh_token: Mapped[str] = mapped_column(SealedText, default="")
    access_expires_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    refresh_expires_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    problem: Mapped[str] = mapped_column(String(300), default="")
    # Text: sealed (storage.sealing) it is longer than the 43-128 characters of a verifier.
    pkce_verifier: Mapped[str] = mapped_column(SealedText, default="")
    pkce_state: Mapped[str] = mapped_column(String(64), default="")


class Draft(Base):
    """A draft policy put to consultation."""

    __tablename__ = "drafts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    title: Mapped[str] = mapped_column(String(200))
    issuer: Mapped[str] = mapped_column(String(200))
    summary: Mapped[str] = mapped_column(Text)
    link: Mapped[str] = mapped_column(String(500), default="")
    scope: Mapped[str] = mapped_column(String(200))  # how the targets were given, for display
    opens_at: Mapped[datetime] = mapped_column(UtcDateTime)
    deadline: Mapped[datetime] = mapped_column(UtcDateTime)
    status: Mapped[str] = mapped_column(String(16), default=DraftStatus.DRAFT)
    poll_question: Mapped[str] = mapped_column(String(300), default="")
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    broadcast_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    closed_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    # Comments received so far: each comment's receipt number within the draft comes from it.
    comment_count: Mapped[int] = mapped_column(Integer, default=0)
    # An official paused the broadcast: its queued messages wait until it is resumed.
    paused: Mapped[bool] = mapped_column(Boolean, default=False)
    # Remind who has not taken part before the deadline (handlers.reminders); an official
    # may turn it off.
    reminders: Mapped[bool] = mapped_column(Boolean, default=True)
    # The level of the issuing body (an IssuerLevel, "" not stated), for the annual report.
    issuer_level: Mapped[str] = mapped_column(String(16), default="")

    options: Mapped[list[PollOption]] = relationship(
        order_by="PollOption.position", lazy="selectin", cascade="all, delete-orphan"
    )


class DraftCommune(Base):
    """One target commune of a draft (a province or 'all' is expanded to its communes)."""

    __tablename__ = "draft_communes"

    draft_id: Mapped[int] = mapped_column(
        ForeignKey("drafts.id", ondelete="CASCADE"), primary_key=True
    )
    commune_code: Mapped[int] = mapped_column(Integer, primary_key=True, index=True)


class PollOption(Base):
    __tablename__ = "poll_options"
    __table_args__ = (UniqueConstraint("draft_id", "position"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    draft_id: Mapped[int] = mapped_column(ForeignKey("drafts.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer)
    label: Mapped[str] = mapped_column(String(100))


class DeliveryKind(StrEnum):
    """What an outbox row sends."""

    DRAFT = "draft"  # a draft's message, rendered at send time in the resident's language
    TEXT = "text"  # a ready message: `payload` holds it (see storage.outbox)


class Delivery(Base):
    """The outbox: one row per message the bot sends on its own initiative.

    `dedup_key` makes queuing idempotent (a broadcast run twice queues nobody twice);
    `expires_at` ends a message's life (a draft's at its deadline); `not_before` is the next
    attempt; `lease_token` fences a claim, so a worker whose lease ran out cannot record an
    outcome over another worker's claim of the same row.
    """

    __tablename__ = "deliveries"
    __table_args__ = (
        UniqueConstraint("dedup_key"),
        Index("ix_deliveries_due", "status", "not_before"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), default=DeliveryKind.DRAFT)
    dedup_key: Mapped[str] = mapped_column(String(160))
    draft_id: Mapped[int | None] = mapped_column(
        ForeignKey("drafts.id", ondelete="CASCADE"), index=True
    )
    resident_id: Mapped[int] = mapped_column(
        ForeignKey("residents.id", ondelete="CASCADE"), index=True
    )
    channel: Mapped[str] = mapped_column(String(16), index=True)
    payload: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(16), default=DeliveryStatus.PENDING, index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    not_before: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    lease_token: Mapped[str] = mapped_column(String(32), default="")
    expires_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    error: Mapped[str] = mapped_column(String(300), default="")


def draft_dedup_key(draft_id: int, person_id: int) -> str:
    """The outbox key of a draft's message to one person (whichever chat it goes to): queued
    once, whatever happens. Keys queued before migration 0004 hold the resident id, which
    that migration made the id of the resident's person."""
    return f"draft:{draft_id}:{person_id}"


class DraftMessage(Base):
    """A chat message that showed a draft, so a reply to it is a comment on that draft."""

    __tablename__ = "draft_messages"
    __table_args__ = (UniqueConstraint("resident_id", "message_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    resident_id: Mapped[int] = mapped_column(ForeignKey("residents.id", ondelete="CASCADE"))
    message_id: Mapped[str] = mapped_column(String(64))
    draft_id: Mapped[int] = mapped_column(ForeignKey("drafts.id", ondelete="CASCADE"))


class Comment(Base):
    """A resident's comment. resident_id becomes NULL when the resident erases their data."""

    __tablename__ = "comments"
    __table_args__ = (UniqueConstraint("draft_id", "number"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    draft_id: Mapped[int] = mapped_column(ForeignKey("drafts.id", ondelete="CASCADE"), index=True)
    # The receipt number within the draft: shown as "3-17" (draft 3, its 17th comment).
    number: Mapped[int] = mapped_column(Integer)
    resident_id: Mapped[int | None] = mapped_column(
        ForeignKey("residents.id", ondelete="SET NULL"), index=True
    )
    commune_code: Mapped[int | None] = mapped_column(Integer)  # where the resident was then
    text: Mapped[str] = mapped_column(Text)
    # Forwarded from someone else (or sent through an inline bot): kept, and marked as such.
    forwarded: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    # Hidden by an official (storage.moderation): why (a ModerationReason, "" while shown),
    # their note, and when. Left out of results and counts, kept in exports marked so.
    hidden_reason: Mapped[str] = mapped_column(String(16), default="")
    hidden_note: Mapped[str] = mapped_column(String(300), default="")
    hidden_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    # Recorded when written, so that the figures survive the person's erasure: the chat app
    # ("" when gathered offline), whom the person answered for then (a RespondentCategory)
    # and how it reached us (a CommentSource).
    channel: Mapped[str] = mapped_column(String(16), default="")
    respondent_category: Mapped[str] = mapped_column(String(16), default="")
    source: Mapped[str] = mapped_column(String(16), default=CommentSource.CHAT)


class Vote(Base):
    """One vote per resident per poll, changed in place until the deadline."""

    __tablename__ = "votes"
    __table_args__ = (UniqueConstraint("draft_id", "resident_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    draft_id: Mapped[int] = mapped_column(ForeignKey("drafts.id", ondelete="CASCADE"), index=True)
    resident_id: Mapped[int | None] = mapped_column(ForeignKey("residents.id", ondelete="SET NULL"))
    option_id: Mapped[int] = mapped_column(ForeignKey("poll_options.id", ondelete="CASCADE"))
    commune_code: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    # Recorded when written, so that the figures survive the person's erasure: the chat app
    # ("" when gathered offline), whom the person answered for then (a RespondentCategory)
    # and how it reached us (a CommentSource).
    channel: Mapped[str] = mapped_column(String(16), default="")
    respondent_category: Mapped[str] = mapped_column(String(16), default="")
    source: Mapped[str] = mapped_column(String(16), default=CommentSource.CHAT)


class ReachWay(StrEnum):
    """How a draft first reached a person."""

    BROADCAST = "broadcast"  # its broadcast message was sent to them
    SUBSCRIBED = "subscribed"  # shown with the open drafts when they subscribed (or came back)
    ASKED = "asked"  # shown when they asked for the open drafts (/drafts)
    # They commented or voted with no earlier reach recorded (one from before reaches were
    # recorded, or a draft chosen for a message typed outside any draft).
    TOOK_PART = "took_part"


class Reach(Base):
    """The first time a draft reached a person, and whether they took part (commented or
    voted): one row per draft and person, written with what caused it.

    Results count these rows, so the counts outlive the outbox's purge and the person: on
    erasure `person_id` becomes NULL and the row, with its commune and way, stays.
    """

    __tablename__ = "reaches"
    __table_args__ = (UniqueConstraint("draft_id", "person_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    draft_id: Mapped[int] = mapped_column(ForeignKey("drafts.id", ondelete="CASCADE"))
    person_id: Mapped[int | None] = mapped_column(
        ForeignKey("persons.id", ondelete="SET NULL"), index=True
    )
    way: Mapped[str] = mapped_column(String(16))
    channel: Mapped[str] = mapped_column(String(16))
    commune_code: Mapped[int | None] = mapped_column(Integer)  # the person's then
    reached_at: Mapped[datetime] = mapped_column(UtcDateTime)
    # Their first comment or vote on the draft; NULL while they have not taken part.
    took_part_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class AppSetting(Base):
    """Values the application generates once and keeps (the pseudonym key, for instance)."""

    __tablename__ = "app_settings"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(String(500))


class ProcessedUpdate(Base):
    """Platform updates already handled, each with its chat and the replies it was given
    (encoded by handlers.payload), committed with what the update changed.

    An update delivered again changes nothing; if the process died before its replies were
    all sent (a crash, or a stop while the chat's pace held them), they are given again. Kept
    two days (platforms retry for less); a decline or an erasure empties the chat's.
    """

    __tablename__ = "processed_updates"
    __table_args__ = (UniqueConstraint("channel", "update_id"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    channel: Mapped[str] = mapped_column(String(16))
    update_id: Mapped[str] = mapped_column(String(64))
    platform_id: Mapped[str] = mapped_column(String(64), default="")  # the chat ("" once gone)
    replies: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class SendBudget(Base):
    """A channel's send rate shared by every process: a token bucket kept in the database."""

    __tablename__ = "send_budgets"

    channel: Mapped[str] = mapped_column(String(32), primary_key=True)
    tokens: Mapped[float] = mapped_column(Float)
    refreshed_at: Mapped[datetime] = mapped_column(UtcDateTime)


class InboundUpdate(Base):
    """A platform update received by webhook: its body until it is handled, then only its
    identity, for two days.

    The webhook answers 200 only once the update is stored here, so an acknowledged update
    is never lost; `(channel, update_id)` makes a retried delivery a no-op. Once handled (or
    given up as `failed`), the body and the chat key are emptied (storage.inbound).
    """

    __tablename__ = "inbound_updates"
    __table_args__ = (
        UniqueConstraint("channel", "update_id"),
        Index("ix_inbound_updates_pending", "handled_at", "id"),
        # An update is claimed only when no earlier one of its chat is pending: that check
        # reads this small index, not every pending row (the backlog under load).
        Index("ix_inbound_updates_chat_pending", "channel", "chat_key", "id",
              sqlite_where=text("handled_at IS NULL"),
              postgresql_where=text("handled_at IS NULL")),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    channel: Mapped[str] = mapped_column(String(16))
    update_id: Mapped[str] = mapped_column(String(64))
    chat_key: Mapped[str] = mapped_column(String(64))  # updates of one chat are handled in order
    payload: Mapped[str] = mapped_column(Text)
    received_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    handled_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # A process handling the row holds it until then; after a crash another one takes over.
    claimed_until: Mapped[datetime | None] = mapped_column(UtcDateTime)
    # It could not be handled (not understood, or it crashed every process that tried).
    failed: Mapped[bool] = mapped_column(Boolean, default=False)


class Role(StrEnum):
    """What a person may do in the officials' workspace (see storage.roles.PERMISSIONS)."""

    ADMIN = "admin"
    OFFICIAL = "official"
    STAFF = "staff"


class ScopeKind(StrEnum):
    """Where a role holds: everywhere, in one province, or in one commune."""

    ALL = "all"
    PROVINCE = "province"
    COMMUNE = "commune"


class RoleGrant(Base):
    """One role a person holds, within one scope (a person may hold several).

    `scope_code` is the province's or commune's code, 0 for the scope `all` (so the unique
    constraint holds: NULLs would never be equal). Goes with the person (erasure).
    """

    __tablename__ = "role_grants"
    __table_args__ = (UniqueConstraint("person_id", "role", "scope_kind", "scope_code"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("persons.id", ondelete="CASCADE"), index=True)
    role: Mapped[str] = mapped_column(String(16))
    scope_kind: Mapped[str] = mapped_column(String(16))
    scope_code: Mapped[int] = mapped_column(Integer, default=0)
    granted_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class RoleInvite(Base):
    """A one-time code (`ykien role invite`) that gives a role to whoever types it to the bot.

    Only the code's SHA-256 is kept: the code itself is printed once and never stored.
    """

    __tablename__ = "role_invites"

    code_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    role: Mapped[str] = mapped_column(String(16))
    scope_kind: Mapped[str] = mapped_column(String(16))
    scope_code: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime)


class PersonToken:
    """A random token given to a person, of which only the SHA-256 is kept, and until when
    it works. Goes with the person (erasure)."""

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("persons.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime)


class LoginLink(PersonToken, Base):
    """A one-time sign-in link for the workspace, asked for with /login."""

    __tablename__ = "login_links"


class WebSession(PersonToken, Base):
    """A signed-in browser: the cookie's token. Deleting the row signs it out in every
    process (sign-out, `ykien role revoke`, erasure)."""

    __tablename__ = "web_sessions"


class SignInFailure(Base):
    """A sign-in link refused (wrong, used or expired) for one client: a few are allowed.

    `client` is a keyed hash of the client's address, not the address itself.
    """

    __tablename__ = "sign_in_failures"
    __table_args__ = (Index("ix_sign_in_failures_client", "client", "created_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    client: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class AuditEntry(Base):
    """One official action (storage.audit.record). Append-only: the migration makes the
    database refuse UPDATE and DELETE on it.

    `actor` and `subject` are pseudonyms (or, for the command line, the operating-system
    user), never a person's id: the log survives the person's erasure and points at no one.
    """

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    via: Mapped[str] = mapped_column(String(8))  # chat, web or cli
    channel: Mapped[str] = mapped_column(String(16), default="")  # the chat app, for chat
    actor: Mapped[str] = mapped_column(String(64))
    role: Mapped[str] = mapped_column(String(16), default="")  # the role used
    action: Mapped[str] = mapped_column(String(32))
    draft_id: Mapped[int | None] = mapped_column(Integer)  # no foreign key: outlives drafts
    subject: Mapped[str] = mapped_column(String(64), default="")  # the person acted upon
    detail: Mapped[str] = mapped_column(String(300), default="")


class ConsentEventKind(StrEnum):
    """What a person did with their consent (storage.consent)."""

    AGREED = "agreed"  # agreed to a version of the privacy notice
    WITHDRAWN = "withdrawn"  # stopped receiving drafts (/stop, STOP, DỪNG)
    ERASED = "erased"  # their data was erased (/delete, or the retention period)


class ConsentEvent(Base):
    """One consent event of one chat: the proof an inspection asks for.

    Keyed by the person's pseudonym (storage.audit.pseudonym), never by their id, so the
    rows survive the person's erasure and then point at no one.
    """

    __tablename__ = "consent_events"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    person: Mapped[str] = mapped_column(String(64), index=True)
    channel: Mapped[str] = mapped_column(String(16))
    event: Mapped[str] = mapped_column(String(16))
    notice_version: Mapped[str] = mapped_column(String(16), default="")
    at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    # Why, where the event alone does not say (an erasure by the retention period).
    detail: Mapped[str] = mapped_column(String(32), default="")


class DataRequest(Base):
    """A person asked for their data (/mydata): a few a day are answered."""

    __tablename__ = "data_requests"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("persons.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class DataLink(PersonToken, Base):
    """A one-time download link of a person's data, for a chat app that takes no file."""

    __tablename__ = "data_links"


class Handling(StrEnum):
    """How the drafting body received a comment ("tiếp thu, giải trình")."""

    ACCEPTED = "accepted"
    PARTLY_ACCEPTED = "partly_accepted"
    NOT_ACCEPTED = "not_accepted"  # the explanation says why
    NOTED = "noted"  # noted, or outside the draft's scope


class CommentAnswer(Base):
    """An official's answer to one comment: its handling and the explanation (storage.answers).

    One row per comment, replaced when answered again; goes with the comment.
    """

    __tablename__ = "comment_answers"

    comment_id: Mapped[int] = mapped_column(
        ForeignKey("comments.id", ondelete="CASCADE"), primary_key=True
    )
    handling: Mapped[str] = mapped_column(String(16))
    explanation: Mapped[str] = mapped_column(Text, default="")
    answered_at: Mapped[datetime] = mapped_column(UtcDateTime)


class Publication(Base):
    """A draft's published response: the overall text, its link, and when it was queued to
    the participants (storage.answers, handlers.publication). One per draft."""

    __tablename__ = "publications"

    draft_id: Mapped[int] = mapped_column(
        ForeignKey("drafts.id", ondelete="CASCADE"), primary_key=True
    )
    summary: Mapped[str] = mapped_column(Text)
    link: Mapped[str] = mapped_column(String(500), default="")
    published_at: Mapped[datetime] = mapped_column(UtcDateTime)


class CommentGroup(Base):
    """Comments an official answers once (storage.groups): near-duplicates found by
    storage.grouping, corrected by hand. Every grouped comment is in exactly one group."""

    __tablename__ = "comment_groups"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    draft_id: Mapped[int] = mapped_column(ForeignKey("drafts.id", ondelete="CASCADE"), index=True)
    # Its name: the representative comment's text, cut, until an official renames it.
    label: Mapped[str] = mapped_column(String(300), default="")
    named_by_hand: Mapped[bool] = mapped_column(Boolean, default=False)
    # The comment that stands for the group (its first); NULL only while being rebuilt.
    representative_id: Mapped[int | None] = mapped_column(
        ForeignKey("comments.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class GroupMembership(Base):
    """A comment's group (one at most: the comment is the key), with its fingerprints so
    later comments join it without the whole draft being grouped again.

    `manual`: set by an official's hand (split, merge, move), kept when the draft is
    grouped again from scratch."""

    __tablename__ = "group_memberships"

    comment_id: Mapped[int] = mapped_column(
        ForeignKey("comments.id", ondelete="CASCADE"), primary_key=True)
    group_id: Mapped[int] = mapped_column(
        ForeignKey("comment_groups.id", ondelete="CASCADE"), index=True)
    draft_id: Mapped[int] = mapped_column(ForeignKey("drafts.id", ondelete="CASCADE"), index=True)
    manual: Mapped[bool] = mapped_column(Boolean, default=False)
    key_hash: Mapped[int] = mapped_column(BigInteger)  # storage.grouping.normalise.key_hash
    band_keys: Mapped[bytes] = mapped_column(LargeBinary)  # storage.grouping.signatures
    joined_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class GroupSuggestion(Base):
    """Groups that seem to make the same point in other words (storage.grouping.similar):
    shown to an official, who merges them or not; never applied by itself."""

    __tablename__ = "group_suggestions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    draft_id: Mapped[int] = mapped_column(ForeignKey("drafts.id", ondelete="CASCADE"), index=True)
    label: Mapped[str] = mapped_column(String(300))  # the most representative comment, cut
    terms: Mapped[str] = mapped_column(String(300))  # the top terms, comma-separated
    group_ids: Mapped[str] = mapped_column(Text)  # the groups, space-separated
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
