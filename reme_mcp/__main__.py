from reme_mcp.faces.cli import main

main()
