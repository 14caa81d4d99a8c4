from tlhub.cli import main

raise SystemExit(main())
