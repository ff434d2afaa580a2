"""Offline emulators of Salesforce REST, QuickBooks Online v3 and the Slack Web API.

See ``../shared/SANDBOX_CONTRACT.md`` (binding) and ``sandbox/README.md``.
"""
