#!/usr/bin/env bash
# Resolves what pyspark lacks (pom.xml beside this script: delta-spark for the lake's Delta
# tables, hadoop-aws and the AWS SDK bundle for s3a://) from Maven Central into $SPARK_JARS_DIR
# (default ./var/spark/jars), once per version.
#   infra/spark/jars.sh        (run by `make setup`)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
jars="${SPARK_JARS_DIR:-$root/var/spark/jars}"
version="hadoop-$(sed -n 's#.*<hadoop.version>\(.*\)</hadoop.version>.*#\1#p' "$here/pom.xml")"
version="$version delta-$(sed -n 's#.*<delta.version>\(.*\)</delta.version>.*#\1#p' "$here/pom.xml")"

if [ -f "$jars/.version" ] && [ "$(cat "$jars/.version")" = "$version" ]; then
  exit 0
fi
command -v mvn >/dev/null || { echo "jars.sh: mvn not found: install Maven" >&2; exit 1; }
echo "jars.sh: resolving $version and the AWS SDK bundle (~560 MB, once per version) from Maven Central into $jars" >&2
rm -rf "$jars.tmp"
mvn -q -B -f "$here/pom.xml" dependency:copy-dependencies \
  -DoutputDirectory="$jars.tmp" -DincludeScope=runtime
rm -rf "$jars" && mv "$jars.tmp" "$jars"
echo "$version" > "$jars/.version"
