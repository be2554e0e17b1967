from django.urls import path

from frontend.views import search

app_name = "frontend"

urlpatterns = [
    path("", search.home, name="home"),
]
