"""The record write API (/api/v1/records/): coordinators' systems (the laboratory system, a
hospital's follow-up office…) create, edit and void CRF records through the forms' services."""
