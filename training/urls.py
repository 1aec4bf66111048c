from django.urls import path

from . import views

app_name = "training"

urlpatterns = [
    path("", views.review_list, name="list"),
    path("<int:pk>/", views.review_detail, name="review"),
    path("awaiting-feedback/", views.awaiting_feedback, name="awaiting-feedback"),
]
