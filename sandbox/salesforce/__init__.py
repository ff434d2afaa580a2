"""The Salesforce emulator: REST API, OAuth 2.0 token endpoint and partner SOAP login.

``SalesforceEmulator`` is the service; its ``backend`` (``SalesforceBackend``) is the org.
"""

from sandbox.salesforce.models import Credentials, SalesforceBackend
from sandbox.salesforce.service import API_VERSION, SalesforceEmulator

__all__ = ["API_VERSION", "Credentials", "SalesforceBackend", "SalesforceEmulator"]
