from rest_framework.routers import DefaultRouter


class StewardRouter(DefaultRouter):
    """Routes accepted with and without a trailing slash."""

    include_root_view = False
    include_format_suffixes = False

    def __init__(self) -> None:
        super().__init__()
        self.trailing_slash = "/?"
