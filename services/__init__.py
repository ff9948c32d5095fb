"""The jastip operations every door uses: chat flows, the admin panel, scheduled jobs.

Each operation is a function that takes the session first and returns a result or
raises a :class:`services.errors.DomainError`. An operation that must tell someone
writes the outbox rows itself, in the same transaction and in the recipient's
language. Services never see a conversation context, a pywa update or an HTTP request.
"""
