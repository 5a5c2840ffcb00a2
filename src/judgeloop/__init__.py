"""judgeloop: LLM-as-judge calibration with human escalation."""

from judgeloop.config import Settings, get_settings

__all__ = ["Settings", "get_settings", "__version__"]

__version__ = "0.1.0"
