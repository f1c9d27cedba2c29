<?xml version="1.0" encoding="UTF-8"?>
<!--
  Browser view of OAI-PMH 2.0 responses: turns any response of this server (every verb and
  every error) into a readable HTML page. XSLT 1.0 only, as browsers implement nothing newer;
  no extension functions, no scripts, no external resources (the CSS sits next to this file).
  Links are built from the baseURL the response itself reports in <request>.
-->
<xsl:stylesheet version="1.0"
    xmlns:xsl="http://www.w3.org/1999/XSL/Transform"
    xmlns:oai="http://www.openarchives.org/OAI/2.0/"
    xmlns:oai_dc="http://www.openarchives.org/OAI/2.0/oai_dc/"
    xmlns:dc="http://purl.org/dc/elements/1.1/"
    xmlns:oai-id="http://www.openarchives.org/OAI/2.0/oai-identifier"
    xmlns:friends="http://www.openarchives.org/OAI/2.0/friends/"
    xmlns:prov="http://www.openarchives.org/OAI/2.0/provenance"
    exclude-result-prefixes="oai oai_dc dc oai-id friends prov">

  <xsl:output method="html" encoding="UTF-8" indent="no" doctype-system="about:legacy-compat"/>

  <!-- ===================================================================== globals -->

  <xsl:variable name="root" select="/oai:OAI-PMH"/>
  <xsl:variable name="request" select="$root/oai:request"/>
  <xsl:variable name="baseURL" select="normalize-space($request)"/>
  <!-- Links start from the baseURL when it is an http(s) URL, else stay relative to the page. The server's
       own rendering of this view (/oai/view) gives its address instead, so that its links lead to pages
       rendered there too. -->
  <xsl:param name="linkBase">
    <xsl:if test="starts-with($baseURL, 'http://') or starts-with($baseURL, 'https://')">
      <xsl:value-of select="$baseURL"/>
    </xsl:if>
  </xsl:param>

  <!-- Whether XML shown as it is (a format we do not know) shows its namespace declarations: each element's are
       found by comparing its namespaces with its parent's, a cost that grows as their square. The server's own
       rendering turns it off for an answer where that would take seconds (an outside audit: one small record
       declaring 2,000 namespaces held a core for hours). -->
  <xsl:param name="showNamespaces" select="true()"/>

  <!-- The verb of the request; an error response may omit it, so fall back to the payload. -->
  <xsl:variable name="verb">
    <xsl:choose>
      <xsl:when test="normalize-space($request/@verb)">
        <xsl:value-of select="normalize-space($request/@verb)"/>
      </xsl:when>
      <xsl:otherwise>
        <xsl:value-of select="local-name($root/*[not(self::oai:responseDate or self::oai:request or self::oai:error)][1])"/>
      </xsl:otherwise>
    </xsl:choose>
  </xsl:variable>

  <!-- Prefix used for "browse" links: the request's own, else the mandatory oai_dc. -->
  <xsl:variable name="browsePrefix">
    <xsl:choose>
      <xsl:when test="normalize-space($request/@metadataPrefix)">
        <xsl:value-of select="normalize-space($request/@metadataPrefix)"/>
      </xsl:when>
      <xsl:otherwise>oai_dc</xsl:otherwise>
    </xsl:choose>
  </xsl:variable>

  <!-- The CSS lives next to this stylesheet: take the directory of the xml-stylesheet href
       (relative URLs in the page resolve against the document, not against this file). -->
  <xsl:variable name="piHref">
    <xsl:variable name="pi" select="string(/processing-instruction('xml-stylesheet')[contains(., 'xsl')][1])"/>
    <xsl:variable name="afterHref" select="substring-after($pi, 'href=')"/>
    <xsl:variable name="quote" select="substring($afterHref, 1, 1)"/>
    <xsl:value-of select="substring-before(substring($afterHref, 2), $quote)"/>
  </xsl:variable>
  <xsl:variable name="cssHref">
    <xsl:choose>
      <xsl:when test="string($piHref)">
        <xsl:call-template name="dirname">
          <xsl:with-param name="path" select="string($piHref)"/>
        </xsl:call-template>
        <xsl:text>oai2.css</xsl:text>
      </xsl:when>
      <xsl:otherwise><xsl:value-of select="concat($linkBase, '/static/oai2.css')"/></xsl:otherwise>
    </xsl:choose>
  </xsl:variable>

  <!-- Percent-encoding table: every printable ASCII character outside RFC 3986's unreserved
       set, plus tab, LF and CR, with its hex code at the same position in $urlHex. -->
  <xsl:variable name="urlUnsafeText"> !"#$%&amp;'()*+,/:;&lt;=&gt;?@[\]^`{|}&#9;&#10;&#13;</xsl:variable>
  <xsl:variable name="urlUnsafe" select="string($urlUnsafeText)"/>
  <xsl:variable name="urlHex" select="'202122232425262728292A2B2C2F3A3B3C3D3E3F405B5C5D5E607B7C7D090A0D'"/>
  <xsl:variable name="urlMarks" select="'%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%'"/>

  <!-- ================================================================= page shell -->

  <xsl:template match="/">
    <html lang="en">
      <head>
        <meta name="viewport" content="width=device-width, initial-scale=1"/>
        <meta name="robots" content="noindex, follow"/>
        <title>
          <xsl:choose>
            <xsl:when test="$root">
              <xsl:if test="string($verb)"><xsl:value-of select="$verb"/> · </xsl:if>
              <xsl:choose>
                <xsl:when test="$root/oai:Identify/oai:repositoryName">
                  <xsl:value-of select="normalize-space($root/oai:Identify/oai:repositoryName)"/>
                </xsl:when>
                <xsl:otherwise><xsl:value-of select="$baseURL"/></xsl:otherwise>
              </xsl:choose>
              <xsl:text> · OAI-PMH</xsl:text>
            </xsl:when>
            <xsl:otherwise>Not an OAI-PMH response</xsl:otherwise>
          </xsl:choose>
        </title>
        <link rel="stylesheet" href="{$cssHref}"/>
      </head>
      <body>
        <a class="skip" href="#main">Skip to content</a>
        <header class="site">
          <div class="wrap">
            <p class="brand">
              <span class="brand-name">OAI-PMH</span>
              <xsl:if test="$baseURL">
                <span class="brand-base"><xsl:value-of select="$baseURL"/></span>
              </xsl:if>
            </p>
            <xsl:call-template name="nav"/>
          </div>
        </header>
        <main id="main" class="wrap">
          <xsl:choose>
            <xsl:when test="$root"><xsl:apply-templates select="$root"/></xsl:when>
            <xsl:otherwise><xsl:call-template name="not-oai"/></xsl:otherwise>
          </xsl:choose>
        </main>
        <footer class="site">
          <div class="wrap">
            <p>This page is the <a href="http://www.openarchives.org/OAI/openarchivesprotocol.html">OAI-PMH 2.0</a>
              XML response, rendered by your browser with <code>oai2.xsl</code>. Harvesters receive the
              XML itself; use “View page source” to see it.</p>
          </div>
        </footer>
      </body>
    </html>
  </xsl:template>

  <xsl:template name="nav">
    <nav class="verbs" aria-label="OAI-PMH requests">
      <ul>
        <xsl:call-template name="nav-item">
          <xsl:with-param name="target" select="'Identify'"/>
          <xsl:with-param name="label" select="'Identify'"/>
        </xsl:call-template>
        <xsl:call-template name="nav-item">
          <xsl:with-param name="target" select="'ListMetadataFormats'"/>
          <xsl:with-param name="label" select="'ListMetadataFormats'"/>
        </xsl:call-template>
        <xsl:call-template name="nav-item">
          <xsl:with-param name="target" select="'ListSets'"/>
          <xsl:with-param name="label" select="'ListSets'"/>
        </xsl:call-template>
        <xsl:call-template name="nav-item">
          <xsl:with-param name="target" select="'ListRecords'"/>
          <xsl:with-param name="label" select="'ListRecords'"/>
          <xsl:with-param name="prefix" select="'oai_dc'"/>
        </xsl:call-template>
        <xsl:call-template name="nav-item">
          <xsl:with-param name="target" select="'ListIdentifiers'"/>
          <xsl:with-param name="label" select="'ListIdentifiers'"/>
          <xsl:with-param name="prefix" select="'oai_dc'"/>
        </xsl:call-template>
      </ul>
    </nav>
  </xsl:template>

  <xsl:template name="nav-item">
    <xsl:param name="target"/>
    <xsl:param name="label"/>
    <xsl:param name="prefix"/>
    <li>
      <a>
        <xsl:attribute name="href">
          <xsl:call-template name="oai-href">
            <xsl:with-param name="verb" select="$target"/>
            <xsl:with-param name="prefix" select="$prefix"/>
          </xsl:call-template>
        </xsl:attribute>
        <xsl:if test="$verb = $target or ($target = 'ListRecords' and $verb = 'GetRecord')">
          <xsl:attribute name="aria-current">page</xsl:attribute>
        </xsl:if>
        <xsl:value-of select="$label"/>
        <xsl:if test="$prefix">
          <span class="nav-prefix"><xsl:value-of select="$prefix"/></span>
        </xsl:if>
      </a>
    </li>
  </xsl:template>

  <!-- =============================================================== the response -->

  <xsl:template match="oai:OAI-PMH">
    <h1>
      <xsl:call-template name="verb-title"/>
      <xsl:if test="string($verb)">
        <xsl:text> </xsl:text><span class="verb"><xsl:value-of select="$verb"/></span>
      </xsl:if>
    </h1>
    <xsl:apply-templates select="oai:request"/>
    <xsl:apply-templates select="oai:error"/>
    <xsl:apply-templates select="oai:Identify | oai:ListMetadataFormats | oai:ListSets
                                 | oai:ListIdentifiers | oai:ListRecords | oai:GetRecord"/>
  </xsl:template>

  <xsl:template name="verb-title">
    <xsl:choose>
      <xsl:when test="not(oai:Identify or oai:ListMetadataFormats or oai:ListSets or oai:ListIdentifiers
                      or oai:ListRecords or oai:GetRecord) and oai:error">
        <xsl:choose>
          <xsl:when test="not(oai:error[@code != 'noRecordsMatch'])">Nothing found</xsl:when>
          <xsl:otherwise>Error</xsl:otherwise>
        </xsl:choose>
      </xsl:when>
      <xsl:when test="$verb = 'Identify'">About this repository</xsl:when>
      <xsl:when test="$verb = 'ListMetadataFormats'">Metadata formats</xsl:when>
      <xsl:when test="$verb = 'ListSets'">Sets</xsl:when>
      <xsl:when test="$verb = 'ListIdentifiers'">Record headers</xsl:when>
      <xsl:when test="$verb = 'ListRecords'">Records</xsl:when>
      <xsl:when test="$verb = 'GetRecord'">Record</xsl:when>
      <xsl:otherwise>Response</xsl:otherwise>
    </xsl:choose>
  </xsl:template>

  <xsl:template match="oai:request">
    <section class="request" aria-label="Request">
      <dl>
        <div>
          <dt>Request</dt>
          <dd>
            <xsl:choose>
              <xsl:when test="@*">
                <xsl:for-each select="@verb">
                  <code class="arg"><span class="arg-name">verb</span>=<span class="arg-value"><xsl:value-of select="."/></span></code>
                  <xsl:text> </xsl:text>
                </xsl:for-each>
                <xsl:for-each select="@*[name() != 'verb']">
                  <code class="arg"><span class="arg-name"><xsl:value-of select="name()"/></span>=<span class="arg-value"><xsl:value-of select="."/></span></code>
                  <xsl:text> </xsl:text>
                </xsl:for-each>
              </xsl:when>
              <xsl:otherwise><span class="muted">(no valid arguments echoed)</span></xsl:otherwise>
            </xsl:choose>
          </dd>
        </div>
        <div>
          <dt>Response date</dt>
          <dd><time><xsl:value-of select="normalize-space(../oai:responseDate)"/></time></dd>
        </div>
      </dl>
    </section>
  </xsl:template>

  <!-- ===================================================================== errors -->

  <xsl:template match="oai:error">
    <div role="alert">
      <xsl:attribute name="class">
        <xsl:text>error</xsl:text>
        <xsl:if test="@code = 'noRecordsMatch'"> error-soft</xsl:if>
      </xsl:attribute>
      <p class="error-code">
        <span class="error-label">
          <xsl:choose>
            <xsl:when test="@code = 'noRecordsMatch'">Nothing found</xsl:when>
            <xsl:otherwise>Error</xsl:otherwise>
          </xsl:choose>
        </span>
        <xsl:text> </xsl:text>
        <code><xsl:value-of select="@code"/></code>
      </p>
      <xsl:if test="normalize-space(.)">
        <p class="error-message"><xsl:value-of select="normalize-space(.)"/></p>
      </xsl:if>
      <p class="error-help">
        <xsl:choose>
          <xsl:when test="@code = 'badArgument'">The request has an illegal or repeated argument, lacks a required one, or an argument value has the wrong syntax.</xsl:when>
          <xsl:when test="@code = 'badResumptionToken'">The resumption token is invalid or has expired. Start the list again from its first page.</xsl:when>
          <xsl:when test="@code = 'badVerb'">The verb is missing, repeated, or not one of the six OAI-PMH verbs.</xsl:when>
          <xsl:when test="@code = 'cannotDisseminateFormat'">This metadata format is not available for the item, or not supported by this repository. See the list of metadata formats.</xsl:when>
          <xsl:when test="@code = 'idDoesNotExist'">No item has this identifier in this repository.</xsl:when>
          <xsl:when test="@code = 'noMetadataFormats'">No metadata formats are available for this item.</xsl:when>
          <xsl:when test="@code = 'noRecordsMatch'">No records match the requested combination of dates, set and metadata format.</xsl:when>
          <xsl:when test="@code = 'noSetHierarchy'">This repository does not organise its records in sets.</xsl:when>
          <xsl:otherwise>The repository reported an error.</xsl:otherwise>
        </xsl:choose>
      </p>
    </div>
  </xsl:template>

  <!-- =================================================================== Identify -->

  <xsl:template match="oai:Identify">
    <section class="identify" aria-labelledby="repo-name">
      <h2 id="repo-name"><xsl:value-of select="normalize-space(oai:repositoryName)"/></h2>
      <table class="fields">
        <tbody>
          <tr>
            <th scope="row">Base URL</th>
            <td><xsl:call-template name="ext-link"><xsl:with-param name="url" select="normalize-space(oai:baseURL)"/></xsl:call-template></td>
          </tr>
          <tr>
            <th scope="row">Protocol version</th>
            <td><xsl:value-of select="normalize-space(oai:protocolVersion)"/></td>
          </tr>
          <tr>
            <th scope="row">Administrator e-mail</th>
            <td>
              <xsl:for-each select="oai:adminEmail">
                <xsl:if test="position() &gt; 1">, </xsl:if>
                <a href="mailto:{normalize-space(.)}"><xsl:value-of select="normalize-space(.)"/></a>
              </xsl:for-each>
            </td>
          </tr>
          <tr>
            <th scope="row">Earliest datestamp</th>
            <td><time><xsl:value-of select="normalize-space(oai:earliestDatestamp)"/></time></td>
          </tr>
          <tr>
            <th scope="row">Deleted records</th>
            <td>
              <code><xsl:value-of select="normalize-space(oai:deletedRecord)"/></code>
              <span class="hint">
                <xsl:choose>
                  <xsl:when test="normalize-space(oai:deletedRecord) = 'no'"> — deletions are not reported</xsl:when>
                  <xsl:when test="normalize-space(oai:deletedRecord) = 'transient'"> — deletions are reported, but not kept forever</xsl:when>
                  <xsl:when test="normalize-space(oai:deletedRecord) = 'persistent'"> — deletions are reported and kept with no time limit</xsl:when>
                </xsl:choose>
              </span>
            </td>
          </tr>
          <tr>
            <th scope="row">Datestamp granularity</th>
            <td><code><xsl:value-of select="normalize-space(oai:granularity)"/></code></td>
          </tr>
          <tr>
            <th scope="row">Compression</th>
            <td>
              <xsl:choose>
                <xsl:when test="oai:compression">
                  <xsl:for-each select="oai:compression">
                    <xsl:if test="position() &gt; 1">, </xsl:if>
                    <code><xsl:value-of select="normalize-space(.)"/></code>
                  </xsl:for-each>
                </xsl:when>
                <xsl:otherwise><span class="muted">none (identity only)</span></xsl:otherwise>
              </xsl:choose>
            </td>
          </tr>
        </tbody>
      </table>
      <xsl:if test="oai:description">
        <h2>Descriptions</h2>
        <xsl:for-each select="oai:description">
          <xsl:apply-templates select="*" mode="description"/>
        </xsl:for-each>
      </xsl:if>
    </section>
  </xsl:template>

  <xsl:template match="oai-id:oai-identifier" mode="description">
    <section class="description">
      <h3>OAI identifier scheme</h3>
      <table class="fields">
        <tbody>
          <tr><th scope="row">Scheme</th><td><code><xsl:value-of select="normalize-space(oai-id:scheme)"/></code></td></tr>
          <tr><th scope="row">Repository identifier</th><td><code><xsl:value-of select="normalize-space(oai-id:repositoryIdentifier)"/></code></td></tr>
          <tr><th scope="row">Delimiter</th><td><code><xsl:value-of select="normalize-space(oai-id:delimiter)"/></code></td></tr>
          <tr>
            <th scope="row">Sample identifier</th>
            <td>
              <xsl:call-template name="getrecord-link">
                <xsl:with-param name="identifier" select="oai-id:sampleIdentifier"/>
              </xsl:call-template>
            </td>
          </tr>
        </tbody>
      </table>
    </section>
  </xsl:template>

  <xsl:template match="friends:friends" mode="description">
    <section class="description">
      <h3>Friends <span class="hint">other OAI-PMH repositories this one recommends</span></h3>
      <ul class="friends">
        <xsl:for-each select="friends:baseURL">
          <li>
            <xsl:call-template name="ext-link">
              <xsl:with-param name="url" select="normalize-space(.)"/>
              <xsl:with-param name="suffix" select="'?verb=Identify'"/>
            </xsl:call-template>
          </li>
        </xsl:for-each>
      </ul>
    </section>
  </xsl:template>

  <xsl:template match="oai_dc:dc" mode="description">
    <section class="description">
      <h3>Dublin Core description</h3>
      <xsl:apply-templates select="." mode="dc"/>
    </section>
  </xsl:template>

  <xsl:template match="*" mode="description">
    <section class="description">
      <h3>
        <code><xsl:value-of select="local-name()"/></code>
        <xsl:if test="namespace-uri()">
          <xsl:text> </xsl:text><span class="ns"><xsl:value-of select="namespace-uri()"/></span>
        </xsl:if>
      </h3>
      <xsl:call-template name="xml-view"/>
    </section>
  </xsl:template>

  <!-- ======================================================== ListMetadataFormats -->

  <xsl:template match="oai:ListMetadataFormats">
    <xsl:variable name="item" select="normalize-space($request/@identifier)"/>
    <xsl:variable name="n" select="count(oai:metadataFormat)"/>
    <p class="summary">
      <xsl:value-of select="$n"/>
      <xsl:choose>
        <xsl:when test="$n = 1"> format</xsl:when>
        <xsl:otherwise> formats</xsl:otherwise>
      </xsl:choose>
      <xsl:choose>
        <xsl:when test="$item">
          <xsl:text> available for the item </xsl:text><code><xsl:value-of select="$item"/></code>
        </xsl:when>
        <xsl:otherwise> supported by this repository</xsl:otherwise>
      </xsl:choose>
    </p>
    <div class="table-scroll">
      <table class="list">
        <thead>
          <tr>
            <th scope="col">Prefix</th>
            <th scope="col">Namespace</th>
            <th scope="col">Schema</th>
            <th scope="col">Browse</th>
          </tr>
        </thead>
        <tbody>
          <xsl:for-each select="oai:metadataFormat">
            <xsl:variable name="prefix" select="normalize-space(oai:metadataPrefix)"/>
            <tr>
              <th scope="row"><code><xsl:value-of select="$prefix"/></code></th>
              <td class="uri"><xsl:value-of select="normalize-space(oai:metadataNamespace)"/></td>
              <td class="uri"><xsl:call-template name="ext-link"><xsl:with-param name="url" select="normalize-space(oai:schema)"/></xsl:call-template></td>
              <td class="actions">
                <xsl:choose>
                  <xsl:when test="$item">
                    <xsl:call-template name="action-link">
                      <xsl:with-param name="target" select="'GetRecord'"/>
                      <xsl:with-param name="prefix" select="$prefix"/>
                      <xsl:with-param name="identifier" select="$item"/>
                      <xsl:with-param name="label" select="'Record'"/>
                    </xsl:call-template>
                  </xsl:when>
                  <xsl:otherwise>
                    <xsl:call-template name="action-link">
                      <xsl:with-param name="target" select="'ListRecords'"/>
                      <xsl:with-param name="prefix" select="$prefix"/>
                      <xsl:with-param name="label" select="'Records'"/>
                    </xsl:call-template>
                    <xsl:call-template name="action-link">
                      <xsl:with-param name="target" select="'ListIdentifiers'"/>
                      <xsl:with-param name="prefix" select="$prefix"/>
                      <xsl:with-param name="label" select="'Identifiers'"/>
                    </xsl:call-template>
                  </xsl:otherwise>
                </xsl:choose>
              </td>
            </tr>
          </xsl:for-each>
        </tbody>
      </table>
    </div>
  </xsl:template>

  <!-- =================================================================== ListSets -->

  <xsl:template match="oai:ListSets">
    <xsl:call-template name="list-status">
      <xsl:with-param name="items" select="oai:set"/>
      <xsl:with-param name="one" select="'set'"/>
      <xsl:with-param name="many" select="'sets'"/>
    </xsl:call-template>
    <div class="table-scroll">
      <table class="list sets">
        <thead>
          <tr>
            <th scope="col">Set spec</th>
            <th scope="col">Name</th>
            <th scope="col">Description</th>
            <th scope="col">Browse</th>
          </tr>
        </thead>
        <tbody>
          <xsl:for-each select="oai:set">
            <xsl:variable name="spec" select="normalize-space(oai:setSpec)"/>
            <tr>
              <th scope="row"><code><xsl:value-of select="$spec"/></code></th>
              <td><xsl:value-of select="normalize-space(oai:setName)"/></td>
              <td class="set-description">
                <xsl:for-each select="oai:setDescription/*">
                  <xsl:choose>
                    <xsl:when test="self::oai_dc:dc">
                      <xsl:for-each select="*">
                        <xsl:variable name="v" select="normalize-space(.)"/>
                        <xsl:choose>
                          <xsl:when test="string-length($v) &gt; 240">
                            <!-- long descriptions stay one click away, so the table stays scannable -->
                            <details class="more">
                              <summary>
                                <xsl:if test="not(self::dc:description)">
                                  <span class="dc-label"><xsl:value-of select="local-name()"/>: </span>
                                </xsl:if>
                                <xsl:value-of select="substring($v, 1, 200)"/>
                                <xsl:text>… </xsl:text><span class="more-hint">more</span>
                              </summary>
                              <p><xsl:value-of select="$v"/></p>
                            </details>
                          </xsl:when>
                          <xsl:otherwise>
                            <p>
                              <xsl:if test="not(self::dc:description)">
                                <span class="dc-label"><xsl:value-of select="local-name()"/>: </span>
                              </xsl:if>
                              <xsl:call-template name="dc-value"/>
                            </p>
                          </xsl:otherwise>
                        </xsl:choose>
                      </xsl:for-each>
                    </xsl:when>
                    <xsl:otherwise><xsl:call-template name="xml-view"/></xsl:otherwise>
                  </xsl:choose>
                </xsl:for-each>
              </td>
              <td class="actions">
                <xsl:call-template name="action-link">
                  <xsl:with-param name="target" select="'ListRecords'"/>
                  <xsl:with-param name="prefix" select="'oai_dc'"/>
                  <xsl:with-param name="set" select="$spec"/>
                  <xsl:with-param name="label" select="'Records'"/>
                </xsl:call-template>
                <xsl:call-template name="action-link">
                  <xsl:with-param name="target" select="'ListIdentifiers'"/>
                  <xsl:with-param name="prefix" select="'oai_dc'"/>
                  <xsl:with-param name="set" select="$spec"/>
                  <xsl:with-param name="label" select="'Identifiers'"/>
                </xsl:call-template>
              </td>
            </tr>
          </xsl:for-each>
        </tbody>
      </table>
    </div>
    <xsl:apply-templates select="oai:resumptionToken"/>
  </xsl:template>

  <!-- ============================================================ ListIdentifiers -->

  <xsl:template match="oai:ListIdentifiers">
    <xsl:call-template name="list-status">
      <xsl:with-param name="items" select="oai:header"/>
      <xsl:with-param name="one" select="'header'"/>
      <xsl:with-param name="many" select="'headers'"/>
    </xsl:call-template>
    <div class="table-scroll">
      <table class="list headers">
        <thead>
          <tr>
            <th scope="col">Identifier</th>
            <th scope="col">Datestamp</th>
            <th scope="col">Sets</th>
            <th scope="col">Status</th>
          </tr>
        </thead>
        <tbody>
          <xsl:for-each select="oai:header">
            <tr>
              <xsl:if test="@status = 'deleted'"><xsl:attribute name="class">deleted</xsl:attribute></xsl:if>
              <th scope="row">
                <xsl:call-template name="getrecord-link">
                  <xsl:with-param name="identifier" select="oai:identifier"/>
                </xsl:call-template>
              </th>
              <td class="nowrap"><time><xsl:value-of select="normalize-space(oai:datestamp)"/></time></td>
              <td><xsl:call-template name="set-links"/></td>
              <td>
                <xsl:choose>
                  <xsl:when test="@status = 'deleted'"><xsl:call-template name="deleted-badge"/></xsl:when>
                  <xsl:otherwise><span class="muted">available</span></xsl:otherwise>
                </xsl:choose>
              </td>
            </tr>
          </xsl:for-each>
        </tbody>
      </table>
    </div>
    <xsl:apply-templates select="oai:resumptionToken"/>
  </xsl:template>

  <!-- ================================================== ListRecords and GetRecord -->

  <xsl:template match="oai:ListRecords">
    <xsl:call-template name="list-status">
      <xsl:with-param name="items" select="oai:record"/>
      <xsl:with-param name="one" select="'record'"/>
      <xsl:with-param name="many" select="'records'"/>
    </xsl:call-template>
    <xsl:apply-templates select="oai:record"/>
    <xsl:apply-templates select="oai:resumptionToken"/>
  </xsl:template>

  <xsl:template match="oai:GetRecord">
    <xsl:apply-templates select="oai:record"/>
  </xsl:template>

  <xsl:template match="oai:record">
    <xsl:variable name="header" select="oai:header"/>
    <xsl:variable name="deleted" select="$header/@status = 'deleted'"/>
    <xsl:variable name="md" select="oai:metadata/*[1]"/>
    <xsl:variable name="title">
      <xsl:choose>
        <xsl:when test="$md/self::oai_dc:dc/dc:title">
          <xsl:value-of select="normalize-space($md/dc:title[1])"/>
        </xsl:when>
        <xsl:when test="$md//*[local-name() = 'article-title']">
          <xsl:value-of select="normalize-space(($md//*[local-name() = 'article-title'])[1])"/>
        </xsl:when>
        <xsl:when test="$md/*[local-name() = 'title']">
          <xsl:value-of select="normalize-space($md/*[local-name() = 'title'][1])"/>
        </xsl:when>
      </xsl:choose>
    </xsl:variable>
    <article>
      <xsl:attribute name="class">
        <xsl:text>record</xsl:text>
        <xsl:if test="$deleted"> deleted</xsl:if>
      </xsl:attribute>
      <header class="record-head">
        <h2 class="record-title" dir="auto">
          <xsl:if test="$md/self::oai_dc:dc/dc:title[1]/@xml:lang">
            <xsl:attribute name="lang"><xsl:value-of select="$md/dc:title[1]/@xml:lang"/></xsl:attribute>
          </xsl:if>
          <xsl:choose>
            <xsl:when test="string($title)"><xsl:value-of select="$title"/></xsl:when>
            <xsl:otherwise><xsl:value-of select="normalize-space($header/oai:identifier)"/></xsl:otherwise>
          </xsl:choose>
          <xsl:if test="$deleted">
            <xsl:text> </xsl:text><xsl:call-template name="deleted-badge"/>
          </xsl:if>
        </h2>
        <dl class="record-meta">
          <div>
            <dt>Identifier</dt>
            <dd>
              <xsl:call-template name="getrecord-link">
                <xsl:with-param name="identifier" select="$header/oai:identifier"/>
              </xsl:call-template>
              <xsl:if test="$browsePrefix != 'oai_dc' and not($deleted)">
                <xsl:text> </xsl:text>
                <xsl:call-template name="action-link">
                  <xsl:with-param name="target" select="'GetRecord'"/>
                  <xsl:with-param name="prefix" select="$browsePrefix"/>
                  <xsl:with-param name="identifier" select="$header/oai:identifier"/>
                  <xsl:with-param name="label" select="$browsePrefix"/>
                </xsl:call-template>
              </xsl:if>
              <xsl:text> </xsl:text>
              <xsl:call-template name="action-link">
                <xsl:with-param name="target" select="'ListMetadataFormats'"/>
                <xsl:with-param name="identifier" select="$header/oai:identifier"/>
                <xsl:with-param name="label" select="'formats'"/>
              </xsl:call-template>
            </dd>
          </div>
          <div>
            <dt>Datestamp</dt>
            <dd><time><xsl:value-of select="normalize-space($header/oai:datestamp)"/></time></dd>
          </div>
          <xsl:if test="$header/oai:setSpec">
            <div>
              <dt>Sets</dt>
              <dd><xsl:for-each select="$header"><xsl:call-template name="set-links"/></xsl:for-each></dd>
            </div>
          </xsl:if>
        </dl>
      </header>
      <xsl:choose>
        <xsl:when test="$deleted">
          <p class="deleted-note">This record has been deleted: the repository keeps only its header.</p>
        </xsl:when>
        <xsl:when test="not($md)">
          <p class="muted">This record has no metadata.</p>
        </xsl:when>
        <xsl:otherwise>
          <section class="metadata">
            <h3>Metadata <span class="ns"><xsl:value-of select="namespace-uri($md)"/></span></h3>
            <xsl:apply-templates select="$md" mode="metadata"/>
          </section>
        </xsl:otherwise>
      </xsl:choose>
      <xsl:if test="oai:about">
        <section class="about">
          <h3>About this record</h3>
          <xsl:for-each select="oai:about/*">
            <xsl:apply-templates select="." mode="about"/>
          </xsl:for-each>
        </section>
      </xsl:if>
    </article>
  </xsl:template>

  <!-- metadata renderers: oai_dc as a table, a JATS article as a summary plus its source,
       anything else as indented XML source -->

  <xsl:template match="oai_dc:dc" mode="metadata">
    <xsl:apply-templates select="." mode="dc"/>
  </xsl:template>

  <xsl:template match="*[local-name() = 'article']" mode="metadata">
    <xsl:variable name="meta" select="*[local-name() = 'front']/*[local-name() = 'article-meta']"/>
    <xsl:variable name="journal" select="*[local-name() = 'front']/*[local-name() = 'journal-meta']"/>
    <table class="fields jats-summary">
      <tbody>
        <xsl:if test="$meta/*[local-name() = 'title-group']/*[local-name() = 'article-title']">
          <tr>
            <th scope="row">Title</th>
            <td><xsl:value-of select="normalize-space($meta/*[local-name() = 'title-group']/*[local-name() = 'article-title'])"/></td>
          </tr>
        </xsl:if>
        <!-- authors: contrib-type author, or none given (NLM samples); a name inside name-alternatives too (OJS) -->
        <xsl:variable name="authors" select="$meta/*[local-name() = 'contrib-group']/*[local-name() = 'contrib'][@contrib-type = 'author' or not(@contrib-type)]"/>
        <xsl:if test="$authors">
          <tr>
            <th scope="row">Authors</th>
            <td>
              <xsl:for-each select="$authors">
                <xsl:if test="position() &gt; 1">; </xsl:if>
                <xsl:variable name="name" select="(*[local-name() = 'name'] | *[local-name() = 'name-alternatives']/*[local-name() = 'name'])[1]"/>
                <xsl:choose>
                  <xsl:when test="$name">
                    <xsl:value-of select="normalize-space($name/*[local-name() = 'surname'])"/>
                    <xsl:if test="$name/*[local-name() = 'given-names']">
                      <xsl:text>, </xsl:text>
                      <xsl:value-of select="normalize-space($name/*[local-name() = 'given-names'])"/>
                    </xsl:if>
                  </xsl:when>
                  <xsl:otherwise><xsl:value-of select="normalize-space((*[local-name() = 'collab' or local-name() = 'string-name'] | *[local-name() = 'name-alternatives']/*[local-name() = 'string-name'])[1])"/></xsl:otherwise>
                </xsl:choose>
              </xsl:for-each>
            </td>
          </tr>
        </xsl:if>
        <xsl:if test="$journal//*[local-name() = 'journal-title']">
          <tr>
            <th scope="row">Journal</th>
            <td><xsl:value-of select="normalize-space(($journal//*[local-name() = 'journal-title'])[1])"/></td>
          </tr>
        </xsl:if>
        <xsl:if test="$meta/*[local-name() = 'pub-date']">
          <xsl:variable name="date" select="$meta/*[local-name() = 'pub-date'][1]"/>
          <tr>
            <th scope="row">Published</th>
            <td>
              <xsl:value-of select="normalize-space($date/*[local-name() = 'year'])"/>
              <xsl:if test="$date/*[local-name() = 'month']">-<xsl:value-of select="normalize-space($date/*[local-name() = 'month'])"/></xsl:if>
              <xsl:if test="$date/*[local-name() = 'day']">-<xsl:value-of select="normalize-space($date/*[local-name() = 'day'])"/></xsl:if>
            </td>
          </tr>
        </xsl:if>
        <xsl:variable name="doi" select="normalize-space($meta/*[local-name() = 'article-id'][@pub-id-type = 'doi'][1])"/>
        <xsl:if test="$doi">
          <tr>
            <th scope="row">DOI</th>
            <td>
              <a>
                <xsl:attribute name="href">
                  <xsl:text>https://doi.org/</xsl:text>
                  <xsl:call-template name="path-encode"><xsl:with-param name="s" select="$doi"/></xsl:call-template>
                </xsl:attribute>
                <xsl:value-of select="$doi"/>
              </a>
            </td>
          </tr>
        </xsl:if>
      </tbody>
    </table>
    <details class="source">
      <xsl:if test="$verb = 'GetRecord'"><xsl:attribute name="open">open</xsl:attribute></xsl:if>
      <summary>XML source</summary>
      <xsl:call-template name="xml-view"/>
    </details>
  </xsl:template>

  <xsl:template match="*" mode="metadata">
    <xsl:call-template name="xml-view"/>
  </xsl:template>

  <!-- about containers: provenance as a chain of origins, oai_dc as a table, else source -->

  <xsl:template match="prov:provenance" mode="about">
    <div class="provenance">
      <h4>Provenance</h4>
      <ol class="origins">
        <xsl:apply-templates select="prov:originDescription"/>
      </ol>
    </div>
  </xsl:template>

  <xsl:template match="prov:originDescription">
    <xsl:variable name="origin" select="normalize-space(prov:baseURL)"/>
    <li>
      <p class="origin-line">
        <xsl:text>Harvested </xsl:text>
        <time><xsl:value-of select="@harvestDate"/></time>
        <xsl:text> from </xsl:text>
        <xsl:call-template name="ext-link">
          <xsl:with-param name="url" select="$origin"/>
          <xsl:with-param name="suffix" select="'?verb=Identify'"/>
        </xsl:call-template>
        <xsl:text> </xsl:text>
        <span>
          <xsl:choose>
            <xsl:when test="@altered = 'true'"><xsl:attribute name="class">badge badge-warn</xsl:attribute>altered</xsl:when>
            <xsl:otherwise><xsl:attribute name="class">badge</xsl:attribute>unaltered</xsl:otherwise>
          </xsl:choose>
        </span>
      </p>
      <dl class="origin-meta">
        <div>
          <dt>Identifier</dt>
          <dd>
            <xsl:call-template name="ext-link">
              <xsl:with-param name="url" select="$origin"/>
              <xsl:with-param name="suffix">
                <xsl:text>?verb=GetRecord&amp;metadataPrefix=oai_dc&amp;identifier=</xsl:text>
                <xsl:call-template name="url-encode">
                  <xsl:with-param name="s" select="normalize-space(prov:identifier)"/>
                </xsl:call-template>
              </xsl:with-param>
              <xsl:with-param name="label" select="normalize-space(prov:identifier)"/>
            </xsl:call-template>
          </dd>
        </div>
        <div><dt>Datestamp</dt><dd><time><xsl:value-of select="normalize-space(prov:datestamp)"/></time></dd></div>
        <div><dt>Metadata namespace</dt><dd class="uri"><xsl:value-of select="normalize-space(prov:metadataNamespace)"/></dd></div>
      </dl>
      <xsl:if test="prov:originDescription">
        <ol class="origins"><xsl:apply-templates select="prov:originDescription"/></ol>
      </xsl:if>
    </li>
  </xsl:template>

  <xsl:template match="oai_dc:dc" mode="about">
    <xsl:apply-templates select="." mode="dc"/>
  </xsl:template>

  <xsl:template match="*" mode="about">
    <div class="about-other">
      <h4><code><xsl:value-of select="local-name()"/></code><xsl:text> </xsl:text><span class="ns"><xsl:value-of select="namespace-uri()"/></span></h4>
      <xsl:call-template name="xml-view"/>
    </div>
  </xsl:template>

  <!-- ============================================================ Dublin Core table -->

  <xsl:template match="*" mode="dc">
    <xsl:choose>
      <xsl:when test="*">
        <table class="dc">
          <tbody>
            <xsl:for-each select="*">
              <tr>
                <th scope="row">
                  <xsl:choose>
                    <xsl:when test="preceding-sibling::*[1][name() = name(current())]">
                      <span class="visually-hidden"><xsl:value-of select="local-name()"/></span>
                    </xsl:when>
                    <xsl:otherwise><xsl:value-of select="local-name()"/></xsl:otherwise>
                  </xsl:choose>
                </th>
                <td dir="auto">
                  <xsl:if test="@xml:lang"><xsl:attribute name="lang"><xsl:value-of select="@xml:lang"/></xsl:attribute></xsl:if>
                  <xsl:choose>
                    <xsl:when test="$verb = 'ListRecords' and string-length(normalize-space(.)) &gt; 700">
                      <!-- in a list, a long abstract is folded so the records stay scannable -->
                      <details class="more">
                        <summary>
                          <xsl:value-of select="substring(normalize-space(.), 1, 400)"/>
                          <xsl:text>… </xsl:text><span class="more-hint">more</span>
                        </summary>
                        <xsl:value-of select="normalize-space(.)"/>
                      </details>
                    </xsl:when>
                    <xsl:otherwise><xsl:call-template name="dc-value"/></xsl:otherwise>
                  </xsl:choose>
                </td>
                <td class="dc-lang">
                  <xsl:if test="@xml:lang">
                    <span class="lang" title="language (xml:lang)"><xsl:value-of select="@xml:lang"/></span>
                  </xsl:if>
                  <xsl:for-each select="@*[not(name() = 'xml:lang')]">
                    <xsl:text> </xsl:text>
                    <span class="attr"><xsl:value-of select="name()"/>=<xsl:value-of select="."/></span>
                  </xsl:for-each>
                </td>
              </tr>
            </xsl:for-each>
          </tbody>
        </table>
      </xsl:when>
      <xsl:otherwise><p class="muted">No Dublin Core elements.</p></xsl:otherwise>
    </xsl:choose>
  </xsl:template>

  <!-- A value; an http(s) URL becomes a link. -->
  <xsl:template name="dc-value">
    <xsl:variable name="v" select="normalize-space(.)"/>
    <xsl:choose>
      <xsl:when test="(starts-with($v, 'http://') or starts-with($v, 'https://')) and not(contains($v, ' '))">
        <a href="{$v}"><xsl:value-of select="$v"/></a>
      </xsl:when>
      <xsl:otherwise><xsl:value-of select="$v"/></xsl:otherwise>
    </xsl:choose>
  </xsl:template>

  <!-- ============================================================ list paging -->

  <!-- "records 101–200 of 5,000" above the list, with a link to the next page. -->
  <xsl:template name="list-status">
    <xsl:param name="items"/>
    <xsl:param name="one"/>
    <xsl:param name="many"/>
    <xsl:variable name="token" select="oai:resumptionToken"/>
    <xsl:variable name="n" select="count($items)"/>
    <div class="list-status">
      <p class="summary">
        <xsl:choose>
          <xsl:when test="$n = 0">No <xsl:value-of select="$many"/> on this page.</xsl:when>
          <xsl:when test="string(number($token/@cursor)) != 'NaN'">
            <xsl:text>Showing </xsl:text>
            <xsl:value-of select="$many"/>
            <xsl:text> </xsl:text>
            <xsl:value-of select="format-number($token/@cursor + 1, '#,##0')"/>
            <xsl:text>–</xsl:text>
            <xsl:value-of select="format-number($token/@cursor + $n, '#,##0')"/>
            <xsl:if test="string(number($token/@completeListSize)) != 'NaN'">
              <xsl:text> of </xsl:text>
              <xsl:value-of select="format-number($token/@completeListSize, '#,##0')"/>
            </xsl:if>
          </xsl:when>
          <xsl:otherwise>
            <xsl:value-of select="format-number($n, '#,##0')"/>
            <xsl:text> </xsl:text>
            <xsl:choose>
              <xsl:when test="$n = 1"><xsl:value-of select="$one"/></xsl:when>
              <xsl:otherwise><xsl:value-of select="$many"/></xsl:otherwise>
            </xsl:choose>
            <xsl:choose>
              <xsl:when test="string(number($token/@completeListSize)) != 'NaN'">
                <xsl:text> on this page, of </xsl:text>
                <xsl:value-of select="format-number($token/@completeListSize, '#,##0')"/>
              </xsl:when>
              <xsl:when test="not($token)"> (complete list)</xsl:when>
              <xsl:otherwise> on this page</xsl:otherwise>
            </xsl:choose>
          </xsl:otherwise>
        </xsl:choose>
        <xsl:if test="normalize-space($request/@set)">
          <xsl:text> · set </xsl:text><code><xsl:value-of select="normalize-space($request/@set)"/></code>
        </xsl:if>
        <xsl:if test="normalize-space($request/@metadataPrefix)">
          <xsl:text> · format </xsl:text><code><xsl:value-of select="normalize-space($request/@metadataPrefix)"/></code>
        </xsl:if>
      </p>
      <xsl:if test="normalize-space($token)">
        <xsl:call-template name="next-link"><xsl:with-param name="token" select="$token"/></xsl:call-template>
      </xsl:if>
    </div>
  </xsl:template>

  <xsl:template match="oai:resumptionToken">
    <nav class="pager" aria-label="Pages of this list">
      <xsl:choose>
        <xsl:when test="normalize-space(.)">
          <xsl:call-template name="next-link"><xsl:with-param name="token" select="."/></xsl:call-template>
          <p class="token">
            <xsl:text>Resumption token </xsl:text><code><xsl:value-of select="normalize-space(.)"/></code>
            <xsl:if test="@expirationDate">
              <xsl:text> · expires </xsl:text><time><xsl:value-of select="@expirationDate"/></time>
            </xsl:if>
          </p>
        </xsl:when>
        <xsl:otherwise>
          <p class="end-of-list">This is the last page of the list.</p>
        </xsl:otherwise>
      </xsl:choose>
    </nav>
  </xsl:template>

  <xsl:template name="next-link">
    <xsl:param name="token"/>
    <p class="next">
      <a rel="next" class="button">
        <xsl:attribute name="href">
          <xsl:call-template name="oai-href">
            <xsl:with-param name="verb" select="$verb"/>
            <xsl:with-param name="token" select="normalize-space($token)"/>
          </xsl:call-template>
        </xsl:attribute>
        <xsl:text>Next page →</xsl:text>
      </a>
    </p>
  </xsl:template>

  <!-- ============================================================ link helpers -->

  <!-- baseURL?verb=V[&resumptionToken=T][&metadataPrefix=P][&set=S][&identifier=I], all encoded -->
  <xsl:template name="oai-href">
    <xsl:param name="verb"/>
    <xsl:param name="token"/>
    <xsl:param name="prefix"/>
    <xsl:param name="set"/>
    <xsl:param name="identifier"/>
    <xsl:value-of select="$linkBase"/>
    <xsl:text>?verb=</xsl:text>
    <xsl:value-of select="$verb"/>
    <xsl:if test="string($token)">
      <xsl:text>&amp;resumptionToken=</xsl:text>
      <xsl:call-template name="url-encode"><xsl:with-param name="s" select="string($token)"/></xsl:call-template>
    </xsl:if>
    <xsl:if test="string($prefix)">
      <xsl:text>&amp;metadataPrefix=</xsl:text>
      <xsl:call-template name="url-encode"><xsl:with-param name="s" select="string($prefix)"/></xsl:call-template>
    </xsl:if>
    <xsl:if test="string($set)">
      <xsl:text>&amp;set=</xsl:text>
      <xsl:call-template name="url-encode"><xsl:with-param name="s" select="string($set)"/></xsl:call-template>
    </xsl:if>
    <xsl:if test="string($identifier)">
      <xsl:text>&amp;identifier=</xsl:text>
      <xsl:call-template name="url-encode"><xsl:with-param name="s" select="normalize-space($identifier)"/></xsl:call-template>
    </xsl:if>
  </xsl:template>

  <xsl:template name="getrecord-link">
    <xsl:param name="identifier"/>
    <a class="identifier">
      <xsl:attribute name="href">
        <xsl:call-template name="oai-href">
          <xsl:with-param name="verb" select="'GetRecord'"/>
          <xsl:with-param name="prefix" select="'oai_dc'"/>
          <xsl:with-param name="identifier" select="normalize-space($identifier)"/>
        </xsl:call-template>
      </xsl:attribute>
      <xsl:value-of select="normalize-space($identifier)"/>
    </a>
  </xsl:template>

  <xsl:template name="action-link">
    <xsl:param name="target"/>
    <xsl:param name="prefix"/>
    <xsl:param name="set"/>
    <xsl:param name="identifier"/>
    <xsl:param name="label"/>
    <a class="action">
      <xsl:attribute name="href">
        <xsl:call-template name="oai-href">
          <xsl:with-param name="verb" select="$target"/>
          <xsl:with-param name="prefix" select="$prefix"/>
          <xsl:with-param name="set" select="$set"/>
          <xsl:with-param name="identifier" select="$identifier"/>
        </xsl:call-template>
      </xsl:attribute>
      <xsl:value-of select="$label"/>
    </a>
  </xsl:template>

  <!-- the setSpecs of the current header, each a link to ListIdentifiers of that set -->
  <xsl:template name="set-links">
    <xsl:for-each select="oai:setSpec">
      <xsl:if test="position() &gt; 1"><xsl:text> </xsl:text></xsl:if>
      <a class="set">
        <xsl:attribute name="href">
          <xsl:call-template name="oai-href">
            <xsl:with-param name="verb" select="'ListIdentifiers'"/>
            <xsl:with-param name="prefix" select="$browsePrefix"/>
            <xsl:with-param name="set" select="normalize-space(.)"/>
          </xsl:call-template>
        </xsl:attribute>
        <xsl:value-of select="normalize-space(.)"/>
      </a>
    </xsl:for-each>
  </xsl:template>

  <!-- A link to a URL taken from the data, only for http(s) URLs (never javascript: and
       the like); anything else is shown as text. -->
  <xsl:template name="ext-link">
    <xsl:param name="url"/>
    <xsl:param name="suffix" select="''"/>
    <xsl:param name="label" select="$url"/>
    <xsl:choose>
      <xsl:when test="starts-with($url, 'http://') or starts-with($url, 'https://')">
        <a href="{$url}{$suffix}"><xsl:value-of select="$label"/></a>
      </xsl:when>
      <xsl:otherwise><span class="uri"><xsl:value-of select="$label"/></span></xsl:otherwise>
    </xsl:choose>
  </xsl:template>

  <xsl:template name="deleted-badge">
    <span class="badge badge-deleted">deleted</span>
  </xsl:template>

  <!-- Percent-encode the ASCII characters that are not unreserved in RFC 3986. Non-ASCII
       characters are left alone: browsers encode them as UTF-8 when following the link.
       Recursion depth is the number of characters to encode, not the string length. -->
  <xsl:template name="url-encode">
    <xsl:param name="s"/>
    <xsl:variable name="marked" select="translate($s, $urlUnsafe, $urlMarks)"/>
    <xsl:choose>
      <xsl:when test="not(contains($marked, '%'))"><xsl:value-of select="$s"/></xsl:when>
      <xsl:otherwise>
        <xsl:variable name="safe" select="string-length(substring-before($marked, '%'))"/>
        <xsl:variable name="c" select="substring($s, $safe + 1, 1)"/>
        <xsl:value-of select="substring($s, 1, $safe)"/>
        <xsl:text>%</xsl:text>
        <xsl:value-of select="substring($urlHex, 2 * string-length(substring-before($urlUnsafe, $c)) + 1, 2)"/>
        <xsl:call-template name="url-encode">
          <xsl:with-param name="s" select="substring($s, $safe + 2)"/>
        </xsl:call-template>
      </xsl:otherwise>
    </xsl:choose>
  </xsl:template>

  <!-- url-encode each '/'-separated segment, keeping the '/'s: a DOI's path at doi.org (a '#' or '?' in a DOI
       would otherwise end the path and lead to another DOI; an outside audit). -->
  <xsl:template name="path-encode">
    <xsl:param name="s"/>
    <xsl:choose>
      <xsl:when test="contains($s, '/')">
        <xsl:call-template name="url-encode"><xsl:with-param name="s" select="substring-before($s, '/')"/></xsl:call-template>
        <xsl:text>/</xsl:text>
        <xsl:call-template name="path-encode"><xsl:with-param name="s" select="substring-after($s, '/')"/></xsl:call-template>
      </xsl:when>
      <xsl:otherwise>
        <xsl:call-template name="url-encode"><xsl:with-param name="s" select="$s"/></xsl:call-template>
      </xsl:otherwise>
    </xsl:choose>
  </xsl:template>

  <!-- "a/b/c.xsl" -> "a/b/" ; "c.xsl" -> "" -->
  <xsl:template name="dirname">
    <xsl:param name="path"/>
    <xsl:if test="contains($path, '/')">
      <xsl:value-of select="substring-before($path, '/')"/>
      <xsl:text>/</xsl:text>
      <xsl:call-template name="dirname">
        <xsl:with-param name="path" select="substring-after($path, '/')"/>
      </xsl:call-template>
    </xsl:if>
  </xsl:template>

  <!-- ========================================================= not OAI-PMH at all -->

  <xsl:template name="not-oai">
    <h1>Not an OAI-PMH 2.0 response</h1>
    <div class="error" role="alert">
      <p class="error-code"><span class="error-label">Unexpected document</span></p>
      <p class="error-message">
        <xsl:text>The root element is </xsl:text>
        <code><xsl:value-of select="name(/*)"/></code>
        <xsl:choose>
          <xsl:when test="namespace-uri(/*)">
            <xsl:text> in the namespace </xsl:text><code><xsl:value-of select="namespace-uri(/*)"/></code>
          </xsl:when>
          <xsl:otherwise> in no namespace</xsl:otherwise>
        </xsl:choose>
        <xsl:text>; an OAI-PMH response is an </xsl:text><code>OAI-PMH</code>
        <xsl:text> element in the namespace </xsl:text><code>http://www.openarchives.org/OAI/2.0/</code>.
      </p>
    </div>
    <section class="metadata">
      <h2>Document</h2>
      <xsl:for-each select="/*">
        <xsl:choose>
          <xsl:when test="self::prov:provenance or self::oai_dc:dc">
            <xsl:apply-templates select="." mode="about"/>
          </xsl:when>
          <xsl:otherwise><xsl:call-template name="xml-view"/></xsl:otherwise>
        </xsl:choose>
      </xsl:for-each>
    </section>
  </xsl:template>

  <!-- ========================================================= XML source view -->

  <!-- The current element as indented, highlighted XML source. -->
  <xsl:template name="xml-view">
    <div class="xml">
      <xsl:apply-templates select="." mode="xml"/>
    </div>
  </xsl:template>

  <!-- Element-only content: one block per child, indented. -->
  <xsl:template match="*" mode="xml">
    <div class="x-el">
      <xsl:choose>
        <xsl:when test="not(node())">
          <xsl:call-template name="x-start"><xsl:with-param name="empty" select="true()"/></xsl:call-template>
        </xsl:when>
        <xsl:when test="text()[normalize-space()]">
          <!-- text or mixed content: keep it flowing on one (wrapped) line -->
          <xsl:call-template name="x-start"/>
          <xsl:apply-templates select="node()" mode="xml-inline"/>
          <xsl:call-template name="x-end"/>
        </xsl:when>
        <xsl:otherwise>
          <xsl:call-template name="x-start"/>
          <div class="x-children">
            <xsl:apply-templates select="*|comment()|processing-instruction()" mode="xml"/>
          </div>
          <xsl:call-template name="x-end"/>
        </xsl:otherwise>
      </xsl:choose>
    </div>
  </xsl:template>

  <xsl:template match="comment()" mode="xml">
    <div class="x-comment">&lt;!--<xsl:value-of select="."/>--&gt;</div>
  </xsl:template>

  <xsl:template match="processing-instruction()" mode="xml">
    <div class="x-pi">&lt;?<xsl:value-of select="name()"/><xsl:text> </xsl:text><xsl:value-of select="."/>?&gt;</div>
  </xsl:template>

  <xsl:template match="*" mode="xml-inline">
    <xsl:choose>
      <xsl:when test="not(node())">
        <xsl:call-template name="x-start"><xsl:with-param name="empty" select="true()"/></xsl:call-template>
      </xsl:when>
      <xsl:otherwise>
        <xsl:call-template name="x-start"/>
        <xsl:apply-templates select="node()" mode="xml-inline"/>
        <xsl:call-template name="x-end"/>
      </xsl:otherwise>
    </xsl:choose>
  </xsl:template>

  <xsl:template match="text()" mode="xml-inline">
    <span class="x-text"><xsl:value-of select="."/></span>
  </xsl:template>

  <xsl:template match="comment()" mode="xml-inline">
    <span class="x-comment">&lt;!--<xsl:value-of select="."/>--&gt;</span>
  </xsl:template>

  <xsl:template match="processing-instruction()" mode="xml-inline">
    <span class="x-pi">&lt;?<xsl:value-of select="name()"/><xsl:text> </xsl:text><xsl:value-of select="."/>?&gt;</span>
  </xsl:template>

  <xsl:template name="x-start">
    <xsl:param name="empty" select="false()"/>
    <span class="x-tag">
      <xsl:text>&lt;</xsl:text>
      <span class="x-name"><xsl:value-of select="name()"/></span>
      <!-- namespace declarations new on this element (browsers without the namespace axis
           simply show none) -->
      <xsl:variable name="parent" select=".."/>
      <xsl:for-each select="namespace::*[$showNamespaces][name() != 'xml']">
        <xsl:variable name="nsName" select="name()"/>
        <xsl:variable name="nsURI" select="string(.)"/>
        <xsl:if test="not($parent/namespace::*[name() = $nsName and string(.) = $nsURI])">
          <xsl:text> </xsl:text>
          <span class="x-attr">
            <xsl:text>xmlns</xsl:text>
            <xsl:if test="$nsName">:<xsl:value-of select="$nsName"/></xsl:if>
          </span>
          <xsl:text>="</xsl:text><span class="x-val"><xsl:value-of select="$nsURI"/></span><xsl:text>"</xsl:text>
        </xsl:if>
      </xsl:for-each>
      <xsl:for-each select="@*">
        <xsl:text> </xsl:text>
        <span class="x-attr"><xsl:value-of select="name()"/></span>
        <xsl:text>="</xsl:text><span class="x-val"><xsl:value-of select="."/></span><xsl:text>"</xsl:text>
      </xsl:for-each>
      <xsl:choose>
        <xsl:when test="$empty">/&gt;</xsl:when>
        <xsl:otherwise>&gt;</xsl:otherwise>
      </xsl:choose>
    </span>
  </xsl:template>

  <xsl:template name="x-end">
    <span class="x-tag">&lt;/<span class="x-name"><xsl:value-of select="name()"/></span>&gt;</span>
  </xsl:template>

</xsl:stylesheet>
