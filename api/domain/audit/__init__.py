from api.domain.audit.service import list_events, record

__all__ = ["list_events", "record"]
