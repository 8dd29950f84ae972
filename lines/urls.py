from django.urls import path

from lines import views

urlpatterns = [
    path("lines/<slug:code>/", views.line_detail, name="line"),
    path("lines/<slug:code>/live/stations", views.line_stations, name="line-stations"),
    path("lines/<slug:code>/live/batches", views.line_batches, name="line-batches"),
    path("lines/<slug:code>/live/holds", views.line_holds, name="line-holds"),
    path("recipes/", views.recipes, name="recipes"),
]
