"""The workspace's pages, one module per area: accounts, projects, project setup, screening,
outputs. Dual review and extraction will be further modules here, listed in
:data:`leads.web.deps.PROJECT_SECTIONS` for the navigation."""
