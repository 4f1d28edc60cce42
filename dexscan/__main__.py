from dexscan.cli import main

raise SystemExit(main())
