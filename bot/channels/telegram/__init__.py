"""Telegram through python-telegram-bot; broadcasts through a lean aiohttp sender."""
