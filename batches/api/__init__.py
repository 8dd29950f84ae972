"""The station API (v1): what station equipment calls, authenticated by station token."""
