"""Tenant-level settings an operator changes at run time (branding, attack protection, MFA
factors, session lifetime), stored in the database over the configuration's defaults."""
