"""The messaging edge's own errors, so that callers never catch aiokafka or SQLAlchemy types."""

from __future__ import annotations


class MessagingError(Exception):
    """Base of every error the messaging edge raises."""


class InvalidOutboxMessageError(MessagingError, ValueError):
    """A message that must not enter the outbox: Kafka would refuse it at publish time."""


class DuplicateMessageError(MessagingError):
    """An inbox record for a message id that another transaction has already recorded."""


class TopicSetupError(MessagingError):
    """The broker refused to create or describe a topic the node needs."""


class EdgeNotStartedError(MessagingError):
    """A call that needs the running broker, made before ``start`` or after ``stop``."""


class BrokerUnavailableError(MessagingError):
    """The broker did not answer while the edge started; the start can be retried."""
