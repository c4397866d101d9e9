"""uniross package."""
