"""A local Twilio for development and tests: a REST API emulator and a caller driver."""

from .caller import CallDriver, CallResult
from .server import Emulator

__all__ = ["CallDriver", "CallResult", "Emulator"]
