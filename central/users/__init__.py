"""The users atomic service: accounts, login tokens, the credit ledger and OTP challenges."""
