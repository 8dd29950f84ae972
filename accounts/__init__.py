"""People's own credentials: engineers' personal API tokens (django-rest-knox), their page and the
`drf_create_token` command."""
