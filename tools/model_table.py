"""Prints the README's model table from the registry: `.venv/bin/python tools/model_table.py`."""

from tfsent.models import registry


def main():
    print("| model | modality | task | kind | from | what it is |")
    print("|---|---|---|---|---|---|")
    for name in registry.names():
        e = registry.get(name)
        print(f"| `{name}` | {e.modality} | {e.task} | {e.kind} | {e.seed} | {e.description} |")


if __name__ == "__main__":
    main()
