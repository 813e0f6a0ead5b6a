"""`ykien serve`: the aiohttp application, the webhook receiver, the officials' pages."""
