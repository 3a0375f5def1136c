"""Write segment_defs/segment.schema.json (editor completion) from the language's tables.

python -m segmentation_dev.schema_file
"""

from __future__ import annotations

import sys

from segmentation import settings
from segmentation.language.schema import SCHEMA_FILE, schema_text


def main() -> int:
    path = settings.project_dir() / SCHEMA_FILE
    path.write_text(schema_text())
    print(f"wrote {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
