"""The community: discussions, social signals, the activity feed, notifications with
workspace webhooks, the studio (创空间) of published apps, and the moderation audit log.

The services are assembled in :mod:`danlu.community.service`; this package module stays
light, because a fine-tuning worker imports :mod:`danlu.community.notifications` to say a job
finished.
"""
