"""What every layer uses: errors, progress lines, file-system helpers, re-ID file-name
conventions and dataset layouts, the feature file format and the Examples layout.
Imports nothing of the project."""
