"""From a stream event to what the rep hears: the policy, the notification record, its wording."""
