"""Point-in-time reconstruction, one module per section; ``reconstruct`` builds the whole document."""

from compliance.reconstruction.document import reconstruct
from compliance.reconstruction.resolve import Query

__all__ = ["Query", "reconstruct"]
