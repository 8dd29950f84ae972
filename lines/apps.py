from django.apps import AppConfig


class LinesConfig(AppConfig):
    name = "lines"
    verbose_name = "Lines, stations and recipes"
