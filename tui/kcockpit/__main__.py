from kcockpit.cli import main

raise SystemExit(main())
