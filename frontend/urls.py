from django.urls import path

from frontend.views import access, assets, compliance, lineage, search, tokens, workspaces

app_name = "frontend"

urlpatterns = [
    path("", search.home, name="home"),
    path("search/suggest", search.suggest, name="suggest"),
    path("datasets/", assets.dataset_list, name="datasets"),
    path("datasets/<uuid:pk>/", assets.dataset_detail, name="dataset"),
    path("datasets/<uuid:pk>/tags/add", assets.dataset_tag_add, name="dataset-tag-add"),
    path("datasets/<uuid:pk>/tags/remove", assets.dataset_tag_remove, name="dataset-tag-remove"),
    path("datasets/<uuid:pk>/lineage", lineage.dataset_lineage, name="dataset-lineage"),
    path("datasets/<uuid:pk>/explain", lineage.dataset_explain, name="dataset-explain"),
    path("models/", assets.model_list, name="models"),
    path("models/<uuid:pk>/", assets.model_detail, name="model"),
    path("tags/", assets.tag_list, name="tags"),
    path("declassifications/", lineage.declassifications, name="declassifications"),
    path(
        "declassifications/<uuid:pk>/approve",
        lineage.declassification_decide,
        {"approve": True},
        name="declassification-approve",
    ),
    path(
        "declassifications/<uuid:pk>/reject",
        lineage.declassification_decide,
        {"approve": False},
        name="declassification-reject",
    ),
    path("compliance/", compliance.compliance_home, name="compliance"),
    path("compliance/reports/<uuid:pk>/", compliance.compliance_report, name="compliance-report"),
    path("access/", access.my_access, name="my-access"),
    path("access/request", access.access_request_new, name="access-request"),
    path("access/cart/add", access.cart_add, name="cart-add"),
    path("access/cart/remove", access.cart_remove, name="cart-remove"),
    path("access/requests/<uuid:pk>/", access.access_request_detail, name="access-request-detail"),
    path("access/requests/<uuid:pk>/approve", access.access_request_approve, name="access-request-approve"),
    path("access/requests/<uuid:pk>/deny", access.access_request_deny, name="access-request-deny"),
    path("access/requests/<uuid:pk>/withdraw", access.access_request_withdraw, name="access-request-withdraw"),
    path("access/grants/", access.grants_managed, name="grants-managed"),
    path("access/grants/<uuid:pk>/revoke", access.grant_revoke_view, name="grant-revoke"),
    path("access/grants/<uuid:pk>/reapprove", access.grant_reapprove_view, name="grant-reapprove"),
    path("approvals/", access.approvals, name="approvals"),
    path("workspaces/", workspaces.workspace_list, name="workspaces"),
    path("workspaces/new", workspaces.workspace_new, name="workspace-new"),
    path("workspaces/<uuid:pk>/", workspaces.workspace_detail, name="workspace"),
    path("workspaces/<uuid:pk>/stop", workspaces.workspace_stop, name="workspace-stop"),
    path("workspaces/<uuid:pk>/start", workspaces.workspace_start, name="workspace-start"),
    path("workspaces/<uuid:pk>/delete", workspaces.workspace_delete, name="workspace-delete"),
    path("tokens/", tokens.tokens, name="tokens"),
    path("tokens/<str:pk>/revoke", tokens.token_revoke_view, name="token-revoke"),
]
