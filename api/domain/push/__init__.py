"""Push delivery. `providers/` holds the clients for FCM, APNs, Web Push and Expo, plus a log-only one for
development, all behind the `PushProvider` contract in `providers/base.py`.

What leaves the building is generic text and a prompt id (design §4.4). Providers classify each answer into a
`SendResult`; whoever calls them decides retries, backoff and disabling dead devices.
"""
