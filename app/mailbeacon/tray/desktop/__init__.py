"""The desktop's own services: notifiers, autostart, one instance per profile, signals."""
