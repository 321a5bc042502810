"""Study reports: a report spec built once from run folders (spec.py), rendered for a browser (html.py)."""
