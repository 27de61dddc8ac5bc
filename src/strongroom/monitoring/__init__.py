"""Monitoring inside ``serve`` (the CloudWatch role): HSM audit-log collection, HSM health,
alarms, and the ``strongroom status`` view."""
