"""Database tables and the session helpers that own transactions."""

from models.base import Base
from models.task import Task, TaskStatus

__all__ = ["Base", "Task", "TaskStatus"]
