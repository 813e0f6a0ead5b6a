"""Models, queries, migrations and exports: everything stored, and nothing about chats."""

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///ykien.db"  # a file beside where the bot runs
