from django.urls import path

from compliance.api.views import ReconstructView, ReportBundleView, ReportDetailView, ReportListView

urlpatterns = [
    path("compliance/reconstruct", ReconstructView.as_view(), name="compliance-reconstruct"),
    path("compliance/reports", ReportListView.as_view(), name="compliance-reports"),
    path("compliance/reports/<uuid:pk>", ReportDetailView.as_view(), name="compliance-report"),
    path("compliance/reports/<uuid:pk>/bundle", ReportBundleView.as_view(), name="compliance-report-bundle"),
]
