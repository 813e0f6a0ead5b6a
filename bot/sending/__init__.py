"""The outbox worker: everything the bot sends on its own initiative."""
