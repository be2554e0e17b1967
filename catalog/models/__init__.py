from catalog.models.assets import Dataset, DatasetAlias, SchemaField
from catalog.models.ml import Deployment, MLModel, ModelVersion, ResultRecord
from catalog.models.search import AssetPopularity, SearchEntry, SearchPrefix, SearchWord
from catalog.models.tags import Tag, TagAssignment

__all__ = [
    "AssetPopularity",
    "Dataset",
    "DatasetAlias",
    "Deployment",
    "MLModel",
    "ModelVersion",
    "ResultRecord",
    "SchemaField",
    "SearchEntry",
    "SearchPrefix",
    "SearchWord",
    "Tag",
    "TagAssignment",
]
