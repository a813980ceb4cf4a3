"""The embedded default for `make run`: SQLite under var/, tasks inline, console e-mail."""

from config.settings.base import *  # noqa: F403
from config.settings.env import env_bool

DEBUG = env_bool("DEBUG", True)
