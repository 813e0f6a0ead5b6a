"""The Zalo Official Account: its channel, API client, tokens and OAuth."""
