from accounts.models.tokens import ApiToken

__all__ = ["ApiToken"]
