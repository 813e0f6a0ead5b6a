"""Chat platforms behind one contract (channel.py): one module or package per platform."""
