"""Shared core of the notify platform."""

# The platform's licence, as named in package metadata and in the AsyncAPI and OpenAPI documents. LICENSE at the
# repository root says why this one.
LICENSE_SPDX_ID = "EUPL-1.2"
