"""The segment definition language: YAML files -> a validated tree. Pure: it imports nothing
else of the project, touches no database and writes nothing.

`loader` reads YAML keeping line:col; `grammar` parses each node kind (`validate`: conditions
and all/any/not, `activity`: has and in_segment) against the field `catalogue` and the
`operators` table into the `model` tree; `project` validates a folder of files together;
`references`, `gating` and `groups` are the cross-definition rules the compiler applies.
"""

from segmentation.language.issues import Issue, Loc
from segmentation.language.model import Condition, Group, Node, Segment

__all__ = ["Condition", "Group", "Issue", "Loc", "Node", "Segment"]
