"""Models, queries, migrations and exports: everything stored, and nothing about chats."""

from zoneinfo import ZoneInfo

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///ykien.db"  # a file beside where the bot runs
VIETNAM = ZoneInfo("Asia/Ho_Chi_Minh")  # deadlines are written and shown in Vietnam time
