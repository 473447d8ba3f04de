"""Database tables and the session helpers that own transactions."""

from models.api_key import ApiKey, Scope
from models.base import Base
from models.task import Task, TaskStatus

__all__ = ["ApiKey", "Base", "Scope", "Task", "TaskStatus"]
