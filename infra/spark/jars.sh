#!/usr/bin/env bash
# Resolves Spark's s3a:// support (pom.xml beside this script: hadoop-aws and the AWS SDK
# bundle) from Maven Central into $SPARK_JARS_DIR (default ./var/spark/jars), once per version.
#   infra/spark/jars.sh        (run by `make setup`)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
jars="${SPARK_JARS_DIR:-$root/var/spark/jars}"
version="$(sed -n 's#.*<hadoop.version>\(.*\)</hadoop.version>.*#\1#p' "$here/pom.xml")"

if [ -f "$jars/.version" ] && [ "$(cat "$jars/.version")" = "$version" ]; then
  exit 0
fi
command -v mvn >/dev/null || { echo "jars.sh: mvn not found: install Maven" >&2; exit 1; }
echo "jars.sh: resolving hadoop-aws $version and the AWS SDK bundle (~560 MB) into $jars" >&2
rm -rf "$jars.tmp"
mvn -q -B -f "$here/pom.xml" dependency:copy-dependencies \
  -DoutputDirectory="$jars.tmp" -DincludeScope=runtime
rm -rf "$jars" && mv "$jars.tmp" "$jars"
echo "$version" > "$jars/.version"
