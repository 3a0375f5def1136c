"""The segment definition language: YAML files -> validated tree -> generated dbt models.

Pipeline: `loader` reads YAML keeping line:col, `validate` checks it against the field
`catalogue` and the `operators` table and builds the `model` tree, `render` writes thin dbt
model files that hand the normalised tree to the Jinja macros in macros/segments/.
"""

from segmentation.definitions import activity as _activity  # noqa: F401 - registers has/in_segment
from segmentation.definitions.issues import Issue, Loc
from segmentation.definitions.model import Condition, Group, Node, Segment

__all__ = ["Condition", "Group", "Issue", "Loc", "Node", "Segment"]
