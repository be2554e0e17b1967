from catalog.models.assets import Dataset, SchemaField
from catalog.models.ml import MLModel, ModelVersion
from catalog.models.search import SearchEntry, SearchWord
from catalog.models.tags import Tag, TagAssignment

__all__ = ["Dataset", "MLModel", "ModelVersion", "SchemaField", "SearchEntry", "SearchWord", "Tag", "TagAssignment"]
